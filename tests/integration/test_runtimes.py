"""joblet.RuntimeService and --runtime against a real server: a tree installed from a local
path, given to jobs read-only at /runtime with its bin/ first on PATH."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.certs import issue_client
from jobyard.cli.main import cli
from jobyard.client import Client
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from tests.integration.conftest import ClientFactory, ServerThread

WAIT_SECONDS = 60
MANIFEST = """
language: shell
version: "1.2"
description: a tiny runtime for tests
packages: [greet]
test: [greet, --check]
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "rt-src"
    (root / "bin").mkdir(parents=True)
    greet = root / "bin" / "greet"
    greet.write_text('#!/bin/sh\necho "hello from the runtime ($*)"\n')
    greet.chmod(0o755)
    (root / "runtime.yml").write_text(MANIFEST)
    return root


def _run(client: Client, script: str, **kw: object) -> tuple[str, str]:
    job = client.submit("sh", ["-c", script], **kw)  # type: ignore[arg-type]
    done = client.wait(job.id, timeout=WAIT_SECONDS)
    return done.status, b"".join(client.logs(job.id)).decode()


def test_a_job_runs_with_the_runtime_read_only_and_first_on_path(admin: Client, tree: Path) -> None:
    assert "runtime shtools installed" in admin.install_runtime("shtools", tree)
    status, out = _run(admin, "greet a b; echo $PATH; touch /runtime/x 2>&1", runtime="shtools")
    greeting, path, touched = out.splitlines()
    assert greeting == "hello from the runtime (a b)"
    assert path.startswith("/runtime/bin:")
    assert "Read-only file system" in touched and status == "FAILED"
    assert admin.job(admin.jobs()[0].id).runtime == "shtools"


def test_list_info_test_and_remove(admin: Client, tree: Path) -> None:
    admin.install_runtime("shtools", tree)
    (listed,) = admin.runtimes()
    assert (listed.name, listed.language, listed.version, listed.packages) == (
        "shtools", "shell", "1.2", ("greet",),
    )  # fmt: skip
    assert listed.size_bytes > 0 and listed.available
    assert admin.runtime("shtools") == listed
    assert admin.runtime("nope") is None
    result = admin.test_runtime("shtools")
    assert (result.success, result.output, result.exit_code) == (
        True, "hello from the runtime (--check)\n", 0,
    )  # fmt: skip
    assert admin.remove_runtime("shtools") == listed.size_bytes
    assert admin.runtimes() == []
    with pytest.raises(NotFound, match=r"^runtime not found: shtools$"):
        admin.submit("true", runtime="shtools")


def test_a_runtime_in_use_stays(admin: Client, tree: Path) -> None:
    admin.install_runtime("shtools", tree)
    job = admin.submit("sleep", ["60"], runtime="shtools")
    with pytest.raises(FailedPrecondition, match="runtime shtools is in use by 1 unfinished"):
        admin.remove_runtime("shtools")
    admin.stop(job.id)
    admin.remove_runtime("shtools")


def test_a_failing_test_says_so(admin: Client, tree: Path) -> None:
    (tree / "runtime.yml").write_text("test: [sh, -c, 'echo broken; exit 3']\n")
    admin.install_runtime("broken", tree)
    result = admin.test_runtime("broken")
    assert (result.success, result.output, result.exit_code) == (False, "broken\n", 3)
    assert result.error.startswith("runtime broken failed its test (exit 3, job ")


@pytest.mark.parametrize(
    ("name", "path", "message"),
    [
        ("rt", "relative/dir", "not a directory on the server"),
        ("rt", "/nonexistent/runtime", "not a directory on the server"),
        ("../rt", "TREE", "invalid runtime name '../rt'"),
    ],
)
def test_bad_installs_are_refused(
    admin: Client, tree: Path, name: str, path: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        admin.install_runtime(name, str(tree) if path == "TREE" else path)
    (tree / "bin" / "greet").unlink()
    (tree / "bin").rmdir()
    with pytest.raises(InvalidArgument, match="it has no bin/ directory"):
        admin.install_runtime("rt", tree)
    assert admin.runtimes() == []


def test_only_admins_install_but_everyone_uses(
    client_for: ClientFactory, certs_dir: Path, admin: Client, tree: Path
) -> None:
    issue_client(certs_dir, "uma", "user", overwrite=True)
    uma = client_for("uma")
    with pytest.raises(PermissionDenied, match="not allowed to perform operation install_runtime"):
        uma.install_runtime("mine", tree)
    admin.install_runtime("shtools", tree)
    assert [r.name for r in uma.runtimes()] == ["shtools"]
    assert _run(uma, "greet", runtime="shtools") == ("COMPLETED", "hello from the runtime ()\n")


def test_a_workflow_naming_an_installed_runtime_runs_with_it(admin: Client, tree: Path) -> None:
    admin.install_runtime("shtools", tree)
    status = admin.run_workflow("jobs:\n  hi: {command: greet, args: [wf], runtime: shtools}\n")
    deadline = time.monotonic() + WAIT_SECONDS
    while not (done := admin.workflow(status.workflow.id)).workflow.done:  # started in background
        assert time.monotonic() < deadline, f"workflow still running: {done}"
        time.sleep(0.05)
    job = admin.job(done.jobs[0].job_id)
    assert job.status == "COMPLETED"
    assert b"".join(admin.logs(job.id)) == b"hello from the runtime (wf)\n"


def test_runtime_commands(server: ServerThread, certs_dir: Path, tree: Path) -> None:
    base = [
        f"--server=localhost:{server.port}",
        f"--cert={certs_dir / 'admin-client-cert.pem'}",
        f"--key={certs_dir / 'admin-client-key.pem'}",
        f"--ca={certs_dir / 'ca-cert.pem'}",
    ]
    runner = CliRunner()
    assert runner.invoke(cli, [*base, "runtime", "install", "cli-rt", str(tree)]).exit_code == 0
    listed = runner.invoke(cli, [*base, "runtime", "list"]).output
    assert listed.splitlines()[1].split()[:3] == ["cli-rt", "shell", "1.2"]
    info = runner.invoke(cli, [*base, "runtime", "info", "cli-rt"]).output
    assert "Packages: greet" in info
    tested = runner.invoke(cli, [*base, "runtime", "test", "cli-rt"])
    assert tested.exit_code == 0 and "test passed" in tested.output
    ran = runner.invoke(cli, [*base, "run", "--json", "--runtime", "cli-rt", "greet"])
    assert ran.exit_code == 0, ran.output
    with Client(f"localhost:{server.port}", base[1][7:], base[2][6:], base[3][5:]) as client:
        job_id = json.loads(ran.output)["id"]
        assert client.wait(job_id, timeout=WAIT_SECONDS).status == "COMPLETED"
        assert b"".join(client.logs(job_id)) == b"hello from the runtime ()\n"
    removed = runner.invoke(cli, [*base, "runtime", "remove", "cli-rt"])
    assert removed.exit_code == 0 and "Runtime cli-rt removed" in removed.output
    missing = runner.invoke(cli, [*base, "runtime", "info", "cli-rt"])
    assert missing.exit_code == 1 and "runtime not found: cli-rt" in missing.output


def test_install_from_a_repository_is_refused_and_force_reinstalls(
    admin: Client, tree: Path
) -> None:
    stub = pb_grpc.RuntimeServiceStub(admin._channel)
    with pytest.raises(grpc.RpcError) as exc:
        stub.InstallRuntime(
            pb.InstallRuntimeRequest(runtimeSpec="gh", repository="ehsaniara/joblet"), timeout=10
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "from a repository is not supported" in (exc.value.details() or "")
    admin.install_runtime("shtools", tree)
    with pytest.raises(FailedPrecondition, match="runtime shtools is installed already"):
        admin.install_runtime("shtools", tree)
    (tree / "runtime.yml").write_text("version: '2.0'\n")
    res = stub.InstallRuntime(
        pb.InstallRuntimeRequest(runtimeSpec="shtools", path=str(tree), forceReinstall=True),
        timeout=10,
    )
    assert (res.runtimeSpec, res.status, res.resolvedPath) == ("shtools", "INSTALLED", str(tree))
    assert [(r.name, r.version) for r in admin.runtimes()] == [("shtools", "2.0")]
