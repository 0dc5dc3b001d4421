"""joblet.VolumeService and --volume against a real server: real loop-mounted ext4 images and
tmpfs, shared by the jobs that name them, bounded in size, scoped to their owner."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobyard.certs import issue_client
from jobyard.cli.main import cli
from jobyard.client import Client
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.integration.conftest import ClientFactory, ServerThread

WAIT_SECONDS = 60


@pytest.fixture(autouse=True)
def unmount_volumes(server: ServerThread) -> Iterator[None]:
    """Volumes stay mounted when a server stops (its jobs go on): unmount this test's, so
    that no loop device outlives it."""
    yield
    server.drain()  # no job holds a volume any more
    root = str(server.data_dir / "volumes") + "/"
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(root):
            subprocess.run(["umount", target], check=True)


def _run(client: Client, script: str, **kw: object) -> tuple[str, str]:
    """Run ``sh -c script``; its status and output once it ended."""
    job = client.submit("sh", ["-c", script], **kw)  # type: ignore[arg-type]
    done = client.wait(job.id, timeout=WAIT_SECONDS)
    return done.status, b"".join(client.logs(job.id)).decode()


def test_jobs_naming_a_volume_share_it_and_it_is_bounded(admin: Client) -> None:
    created = admin.create_volume("shared", "16MB")
    assert (created.name, created.size, created.type, created.path) == (
        "shared", "16MB", "filesystem", "/volumes/shared",
    )  # fmt: skip

    status, out = _run(admin, "echo from-first > /volumes/shared/note", volumes=["shared"])
    assert status == "COMPLETED", out
    status, out = _run(
        admin, "cat /volumes/shared/note; df -k /volumes/shared | tail -1", volumes=["shared"]
    )
    assert status == "COMPLETED", out
    first, usage = out.splitlines()
    assert first == "from-first"
    assert 8_000 < int(usage.split()[1]) <= 16 * 1024  # total KiB: the volume's, not the disk's
    status, out = _run(
        admin, "dd if=/dev/zero of=/volumes/shared/big bs=1M count=64", volumes=["shared"]
    )
    assert status == "FAILED" and "No space left on device" in out
    status, out = _run(admin, "cat /volumes/shared/note 2>&1")
    assert status == "FAILED" and "No such file or directory" in out  # not named: not there


def test_workflow_jobs_naming_a_volume_share_it(admin: Client) -> None:
    admin.create_volume("wfvol", "8MB")
    status = admin.run_workflow("""
jobs:
  produce: {command: sh, args: [-c, "echo made > /volumes/wfvol/out"], volumes: [wfvol]}
  consume:
    command: cat
    args: [/volumes/wfvol/out]
    volumes: [wfvol]
    requires: [{produce: COMPLETED}]
""")
    deadline = time.monotonic() + WAIT_SECONDS
    while not (done := admin.workflow(status.workflow.id)).workflow.done:
        assert time.monotonic() < deadline, f"workflow still running: {done}"
        time.sleep(0.05)
    assert done.workflow.status == "COMPLETED", done
    assert b"".join(admin.logs(done.jobs[-1].job_id)) == b"made\n"


def test_a_memory_volume_is_a_tmpfs_of_its_size(admin: Client) -> None:
    admin.create_volume("scratch", "8MB", "memory")
    status, out = _run(
        admin, "stat -f -c %T /volumes/scratch; df -k /volumes/scratch | tail -1",
        volumes=["scratch"],
    )  # fmt: skip
    assert status == "COMPLETED", out
    kind, usage = out.splitlines()
    assert kind == "tmpfs" and int(usage.split()[1]) == 8 * 1024
    assert [(v.name, v.type, v.size) for v in admin.volumes()] == [("scratch", "memory", "8MB")]


def test_volumes_are_scoped_to_their_owner(
    client_for: ClientFactory, certs_dir: Path, admin: Client
) -> None:
    issue_client(certs_dir, "vera", "user", overwrite=True)
    issue_client(certs_dir, "walt", "user", overwrite=True)
    vera, walt = client_for("vera"), client_for("walt")
    vera.create_volume("veras", "8MB")

    assert [v.name for v in walt.volumes()] == []
    with pytest.raises(NotFound, match=r"^volume not found: veras$"):
        walt.submit("true", volumes=["veras"])
    with pytest.raises(NotFound, match=r"^volume not found: veras$"):
        walt.remove_volume("veras")
    assert [(v.name, v.owner) for v in admin.volumes()] == [("veras", "vera")]
    status, out = _run(vera, "echo mine > /volumes/veras/f && cat /volumes/veras/f",
                       volumes=["veras"])  # fmt: skip
    assert (status, out) == ("COMPLETED", "mine\n")
    assert _run(admin, "cat /volumes/veras/f", volumes=["veras"]) == ("COMPLETED", "mine\n")


def test_a_volume_in_use_is_not_removed(admin: Client, server: ServerThread) -> None:
    admin.create_volume("busy", "8MB")
    job = admin.submit("sleep", ["60"], volumes=["busy"])
    assert [v.job_count for v in admin.volumes()] == [1]
    with pytest.raises(FailedPrecondition, match="volume busy is in use by 1 unfinished job"):
        admin.remove_volume("busy")
    admin.stop(job.id)
    assert admin.remove_volume("busy") == "volume busy removed"
    assert admin.volumes() == []
    assert not (server.data_dir / "volumes" / "busy").exists()
    with pytest.raises(NotFound, match=r"^volume not found: busy$"):
        admin.submit("true", volumes=["busy"])


def test_a_volume_keeps_its_content_across_a_restart(admin: Client, server: ServerThread) -> None:
    admin.create_volume("kept", "8MB")
    assert _run(admin, "echo kept > /volumes/kept/f", volumes=["kept"])[0] == "COMPLETED"
    server.stop()
    os.system(f"umount {server.data_dir / 'volumes' / 'kept'}")  # as a reboot would
    server.start()
    with Client(f"localhost:{server.port}", admin.settings.cert, admin.settings.key,
                admin.settings.ca) as again:  # fmt: skip
        assert _run(again, "cat /volumes/kept/f", volumes=["kept"]) == ("COMPLETED", "kept\n")


@pytest.mark.parametrize(
    ("name", "size", "kind", "message"),
    [
        ("../x", "8MB", "filesystem", "invalid volume name '../x'"),
        ("ok", "1KB", "filesystem", "must be between 8MB and"),
        ("ok", "lots", "filesystem", "invalid size 'lots'"),
        ("ok", "8MB", "nfs", "invalid volume type 'nfs'"),
    ],
)
def test_bad_volumes_are_refused(
    admin: Client, name: str, size: str, kind: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        admin.create_volume(name, size, kind)
    assert admin.volumes() == []


def test_volume_commands(server: ServerThread, certs_dir: Path) -> None:
    base = [
        f"--server=localhost:{server.port}",
        f"--cert={certs_dir / 'admin-client-cert.pem'}",
        f"--key={certs_dir / 'admin-client-key.pem'}",
        f"--ca={certs_dir / 'ca-cert.pem'}",
    ]
    runner = CliRunner()
    created = runner.invoke(cli, [*base, "volume", "create", "cli-vol", "--size", "8MB"])
    assert created.exit_code == 0, created.output
    assert "Path: /volumes/cli-vol" in created.output
    listed = runner.invoke(cli, [*base, "volume", "list"])
    assert listed.output.splitlines()[1].split()[:4] == ["cli-vol", "8MB", "filesystem", "0"]
    ran = runner.invoke(cli, [*base, "run", "--volume", "cli-vol", "touch", "/volumes/cli-vol/x"])
    assert ran.exit_code == 0, ran.output
    removed = runner.invoke(cli, [*base, "volume", "remove", "nope"])
    assert removed.exit_code == 1 and "volume not found: nope" in removed.output
