"""Disk: --max-disk bounds what a job writes to /work and its output; a full data disk
still records every job's true end and refuses new jobs clearly until space returns.

Data dirs live outside /tmp (under /var/lib); the full disk is a small tmpfs mounted as
the data dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobyard.client import Client
from jobyard.domain.errors import ResourceExhausted
from jobyard.logs import JobLayout
from jobyard.runtime.local.disks import image_bytes
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread

WAIT = 30.0
MB = 1024 * 1024


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def output(client: Client, job_id: str) -> bytes:
    return b"".join(client.logs(job_id))


Started = Callable[..., tuple[ServerThread, Client]]


@pytest.fixture
def base() -> Iterator[Path]:
    if root_problem():
        pytest.skip(root_problem() or "")
    path = Path(tempfile.mkdtemp(prefix="jobyard-test-", dir="/var/lib"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start(base: Path, certs_dir: Path) -> Iterator[Started]:
    """Start servers with a YAML config whose data dir is ``base/data`` (or ``data``)."""
    started: list[tuple[ServerThread, Client]] = []

    def run(yaml: str = "", data: Path | None = None) -> tuple[ServerThread, Client]:
        config = base / f"config-{len(started)}.yml"
        config.write_text(yaml)
        thread = ServerThread(data or base / "data", certs_dir, config_file=config)
        thread.start()
        client = Client(
            server=f"localhost:{thread.port}",
            cert=str(certs_dir / "admin-client-cert.pem"),
            key=str(certs_dir / "admin-client-key.pem"),
            ca=str(certs_dir / "ca-cert.pem"),
        )
        started.append((thread, client))
        return thread, client

    yield run
    for thread, client in started:
        client.close()
        thread.close()
        # Removing each job unmounts its work disk, as `jobyard delete` does.
        layout = JobLayout(thread.data_dir)
        for job_dir in layout.jobs_dir.glob("*"):
            layout.remove(job_dir.name)


# -- --max-disk ------------------------------------------------------------------------------


def test_a_job_writing_past_its_max_disk_to_work_is_bounded_and_stopped(start: Started) -> None:
    server, admin = start()
    # fallocate asks for the space at once: refused by the file system itself, whatever
    # the poll does; what it got is past the limit, so the job is stopped.
    script = (
        "echo kept > small.txt; fallocate -l 100M big || echo refused;"
        " fallocate -l 22M fits; exec sleep 100"
    )
    job = admin.submit("sh", ["-c", script], max_disk=20)
    done = admin.wait(job.id, timeout=WAIT)

    assert (done.status, done.termination_reason) == ("STOPPED", "DISK_LIMIT")
    assert done.max_disk == 20
    assert done.message == "stopped: disk limit reached"
    said = output(admin, job.id).decode()
    assert "fallocate failed: No space left on device\nrefused\n" in said
    files = {f.path: f.size for f in admin.files(job.id)}
    assert files["big"] < image_bytes(20)  # what fitted of it is kept, and no more
    target = server.data_dir / "kept.txt"
    admin.download(job.id, "small.txt", target)  # the work dir is still served after the end
    assert target.read_bytes() == b"kept\n"


def test_output_counts_against_max_disk(start: Started) -> None:
    _, admin = start()
    job = admin.submit("sh", ["-c", "head -c 40000000 /dev/zero; exec sleep 100"], max_disk=10)
    done = admin.wait(job.id, timeout=WAIT)

    assert (done.status, done.termination_reason) == ("STOPPED", "DISK_LIMIT")
    details = admin.details(job.id)
    assert details.output_bytes > 10 * MB  # the output up to the limit is kept
    assert "disk limit of 10 MB reached" in " ".join(u.message for u in done.updates)


def test_the_default_max_disk_applies_and_delete_unmounts_the_work_disk(start: Started) -> None:
    server, admin = start("jobyard:\n  defaultMaxDisk: 8\n")
    job = admin.submit("sh", ["-c", "df -k /work | tail -1"])
    done = admin.wait(job.id, timeout=WAIT)
    assert (done.status, done.max_disk) == ("COMPLETED", 8)
    size_kb = int(output(admin, job.id).split()[1])
    assert 8 * 1024 <= size_kb <= image_bytes(8) // 1024  # /work is a file system of its size
    workdir = server.data_dir / "jobs" / job.id / "work"
    assert os.path.ismount(workdir)

    admin.delete(job.id)
    assert not workdir.exists() and not os.path.ismount(workdir)


# -- a full data disk --------------------------------------------------------------------------

DATA_DISK_MB = 48
RESERVE = 4 * MB


@pytest.fixture
def small_disk(base: Path) -> Iterator[Path]:
    """A 48 MB tmpfs as the data dir: small enough for a job to fill."""
    data = base / "small-data"
    data.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DATA_DISK_MB}m,mode=0755", "jobyard-test", data],
        check=True,
    )
    yield data
    subprocess.run(["umount", "--lazy", data], check=False)


def test_a_full_data_disk_records_true_ends_and_refuses_new_jobs_until_space_returns(
    start: Started, small_disk: Path
) -> None:
    _, admin = start(f"jobyard:\n  diskReserveBytes: {RESERVE}\n", data=small_disk)
    finished = admin.submit("echo", ["kept"])
    assert admin.wait(finished.id, timeout=WAIT).status == "COMPLETED"
    # Silent: a job whose output grows while the disk fills is stopped with the filler.
    bystander = admin.submit("sleep", ["100"])
    eventually(lambda: admin.job(bystander.id).status == "RUNNING", "the bystander")
    filler = admin.submit("sh", ["-c", f"head -c {2 * DATA_DISK_MB * MB} /dev/zero > fill; exit 3"])

    done = admin.wait(filler.id, timeout=WAIT)
    assert (done.status, done.exit_code, done.termination_reason) == ("FAILED", 3, "EXITED")
    with pytest.raises(
        ResourceExhausted, match=r"the data disk is full: .* MB free, .* MB reserved"
    ):
        admin.submit("true")
    assert admin.job(bystander.id).status == "RUNNING"  # the server still answers
    assert output(admin, finished.id) == b"kept\n"  # others' output is intact

    (small_disk / "jobs" / filler.id / "work" / "fill").unlink()  # space returns
    again = admin.submit("echo", ["back"])
    assert admin.wait(again.id, timeout=WAIT).status == "COMPLETED"
    assert (small_disk / "disk-reserve").stat().st_size == RESERVE  # re-made
    admin.stop(bystander.id)
