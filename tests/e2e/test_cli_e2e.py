"""The CLI and the daemon as subprocesses, as a user runs them: real certificates, a real
server on a free port of 127.0.0.1, the real local runtime."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import root_problem
from tests.e2e.daemon import COMMAND_TIMEOUT_SECONDS, Daemon, free_port, jobyard_argv

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(root_problem() is not None, reason=root_problem() or ""),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("e2e"))
    d.start()
    yield d
    d.stop()


def test_run_prints_the_seeds_block(daemon: Daemon) -> None:
    result = daemon.run("run", "--max-cpu=50", "--max-memory=256", "echo", "hello world")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Job started:"
    assert lines[1].startswith("ID: ") and uuid.UUID(lines[1][4:])
    assert lines[2] == "Command: echo hello world"
    assert "MaxCPU: 50" in lines and "MaxMemory: 256" in lines
    assert lines[-1] == "Network: host (shared with system)"


def test_a_job_runs_to_completion_and_its_output_is_kept(daemon: Daemon) -> None:
    job_id = daemon.submit("bash", "-c", "echo out; echo err >&2; exit 3")

    done = daemon.wait(job_id)
    logs = daemon.run_bytes("log", "--follow=false", job_id)
    status = daemon.run("status", job_id)

    assert (done["status"], done["exitCode"]) == ("FAILED", 3)
    assert logs.returncode == 0
    assert sorted(logs.stdout.splitlines()) == [b"err", b"out"]
    assert logs.stderr.decode().startswith(f"Logs for job {job_id} ")
    assert f"Id: {job_id}\n" in status.stdout
    assert "Status: FAILED\n" in status.stdout and "ExitCode: 3\n" in status.stdout


def test_max_disk_bounds_the_work_dir_as_the_cli_shows(daemon: Daemon) -> None:
    script = "fallocate -l 50M big || echo refused; exec sleep 30"
    job_id = daemon.submit("--max-disk=5", "sh", "-c", script)

    done = daemon.wait(job_id)
    status = daemon.run("status", job_id)
    logs = daemon.run("log", "--follow=false", job_id)
    deleted = daemon.run("delete", job_id)  # unmounts its /work

    assert (done["status"], done["terminationReason"]) == ("STOPPED", "DISK_LIMIT")
    assert "MaxDisk: 5 MB\n" in status.stdout and "Reason: DISK_LIMIT\n" in status.stdout
    assert "No space left on device\nrefused\n" in logs.stdout
    assert deleted.returncode == 0, deleted.stderr
    assert not (daemon.root / "data" / "jobs" / job_id).exists()


def test_log_follows_live_output_until_the_job_ends(daemon: Daemon) -> None:
    job_id = daemon.submit("bash", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done")

    result = daemon.run_bytes("log", job_id)

    assert result.returncode == 0
    assert result.stdout == b"line 1\nline 2\nline 3\n"


def test_list_shows_each_job_on_one_line(daemon: Daemon) -> None:
    job_id = daemon.submit("true")
    daemon.wait(job_id)

    result = daemon.run("list")

    [line] = [line for line in result.stdout.splitlines() if line.startswith(job_id)]
    assert line.startswith(f"{job_id} COMPLETED StartTime: ")
    assert line.endswith(" Command: true")


def test_stop_a_running_job_then_stop_again_is_an_error(daemon: Daemon) -> None:
    job_id = daemon.submit("sleep", "60")

    first = daemon.run("stop", job_id)
    second = daemon.run("stop", job_id)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"Job stopped successfully:\nID: {job_id}\nStatus: STOPPED\n")
    assert second.returncode == 1
    assert second.stderr == (f"Error: job is not running: {job_id} (current status: STOPPED)\n")


def test_secret_environment_reaches_the_job_but_is_never_shown(daemon: Daemon) -> None:
    job_id = daemon.submit(
        "--secret-env", "TOKEN=hunter2", "bash", "-c", 'echo "${TOKEN:0:3} ${#TOKEN}"'
    )
    daemon.wait(job_id)

    status = daemon.run("status", job_id)
    as_json = daemon.run("status", "--json", job_id)
    logs = daemon.run("log", "--follow=false", job_id)

    assert logs.stdout == "hun 7\n"
    assert "SecretEnvironment: TOKEN=********" in status.stdout
    assert "hunter2" not in status.stdout + as_json.stdout
    # Nor at rest: not in the database, its WAL, the job's files or the server's log.
    files = [p for p in (daemon.root / "data").rglob("*") if p.is_file()]
    files.append(daemon.log_path)
    assert [str(p) for p in files if b"hunter2" in p.read_bytes()] == []


def test_a_viewer_may_read_but_not_run(daemon: Daemon) -> None:
    viewer = [
        "--cert",
        str(daemon.certs / "viewer-client-cert.pem"),
        "--key",
        str(daemon.certs / "viewer-client-key.pem"),
    ]

    denied = daemon.run(*viewer, "run", "echo", "x")
    listed = daemon.run(*viewer, "list")

    assert denied.returncode == 1
    assert denied.stderr == "Error: role viewer is not allowed to perform operation run_job\n"
    assert listed.returncode == 0


def _as(daemon: Daemon, name: str) -> list[str]:
    pair = [daemon.certs / f"{name}-client-{part}.pem" for part in ("cert", "key")]
    return ["--cert", str(pair[0]), "--key", str(pair[1])]


def test_users_issued_by_certs_client_see_their_projects_jobs_only(daemon: Daemon) -> None:
    for name, project in (("ann", "physics"), ("ben", "physics"), ("cat", "chemistry")):
        issued = daemon.run("certs", "client", "--dir", str(daemon.certs), "--name", name,
                            "--role", "user", "--project", project, "--force")  # fmt: skip
        assert issued.returncode == 0, issued.stderr
    job_id = json.loads(
        daemon.run(*_as(daemon, "ann"), "run", "--json", "true", check=True).stdout
    )["id"]

    mate = daemon.run(*_as(daemon, "ben"), "status", job_id)
    stranger = daemon.run(*_as(daemon, "cat"), "status", job_id)
    listed = daemon.run(*_as(daemon, "cat"), "list", "--json")

    assert mate.returncode == 0, mate.stderr
    assert "Owner: ann\n" in mate.stdout and "Project: physics\n" in mate.stdout
    assert stranger.returncode == 1
    assert stranger.stderr == f"Error: job not found: {job_id}\n"
    assert listed.returncode == 0 and job_id not in listed.stdout


def test_an_unknown_job_is_not_found(daemon: Daemon) -> None:
    missing = str(uuid.uuid4())

    result = daemon.run("status", missing)

    assert result.returncode == 1
    assert result.stderr == f"Error: job not found: {missing}\n"


def test_a_client_from_another_ca_is_turned_away(daemon: Daemon, tmp_path: Path) -> None:
    daemon.run("certs", "init", "--dir", str(tmp_path), check=True)

    result = daemon.run(
        "--cert",
        str(tmp_path / "admin-client-cert.pem"),
        "--key",
        str(tmp_path / "admin-client-key.pem"),
        "list",
    )

    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")


def test_the_server_refuses_to_start_without_certificates(tmp_path: Path) -> None:
    result = subprocess.run(
        [*jobyard_argv(), "server", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )

    assert result.returncode == 2
    assert "refusing to start without TLS" in result.stderr


def test_a_server_refuses_to_start_on_a_taken_port(daemon: Daemon, tmp_path: Path) -> None:
    # gRPC binds with SO_REUSEPORT by default: a second server started there silently shared
    # the port, and the kernel handed each new connection to one of the two at random.
    other = Daemon(tmp_path / "other")
    out = _refused_start(other, "--listen", f"127.0.0.1:{daemon.port}")
    assert f"cannot listen on 127.0.0.1:{daemon.port}: the address is in use" in out
    with socket.socket() as taken:  # the HTTPS face's port taken: no half-started server
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        http = f"127.0.0.1:{taken.getsockname()[1]}"
        out = _refused_start(other, "--listen", f"127.0.0.1:{free_port()}", "--http-listen", http)
    assert f"cannot listen on {http}" in out and "Traceback" not in out
    with daemon.client() as c:
        assert c.jobs() is not None  # the first server still answers


def _refused_start(daemon: Daemon, *args: str) -> str:
    """What ``jobyard server ARGS`` printed, once it exited non-zero as it must."""
    argv = [*jobyard_argv(), "server", "--certs", "certs", "--data-dir", "data", *args]
    process = subprocess.Popen(
        argv, env=daemon.env, cwd=daemon.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = process.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the server started with {args}")
    assert process.returncode != 0
    return out.decode()
