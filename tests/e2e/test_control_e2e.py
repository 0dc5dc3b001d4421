"""Suspend, resume, usage and --network none through the CLI against the daemon, and a
suspended job across a kill -9 of the daemon."""

from __future__ import annotations

import time

import pytest

from tests.conftest import root_problem
from tests.e2e.daemon import Daemon

pytestmark = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")

COUNTER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done"
WAIT_SECONDS = 30.0


def counted(daemon: Daemon, job_id: str) -> list[int]:
    with daemon.client() as c:
        return [int(n) for n in b"".join(c.logs(job_id)).split()]


def until_counted(daemon: Daemon, job_id: str, more_than: int) -> list[int]:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(numbers := counted(daemon, job_id)) <= more_than:
        assert time.monotonic() < deadline, "the counter did not count"
        time.sleep(0.05)
    return numbers


def field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"{name}: "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no {name} in:\n{text}")


def test_suspend_and_resume_through_the_cli(daemon: Daemon) -> None:
    job_id = daemon.submit("sh", "-c", COUNTER)
    until_counted(daemon, job_id, 3)

    suspended = daemon.run("suspend", job_id)
    assert suspended.returncode == 0, suspended.stderr
    assert suspended.stdout == f"Job suspended:\nID: {job_id}\nStatus: SUSPENDED\n"
    frozen = counted(daemon, job_id)
    time.sleep(0.5)
    status = daemon.run("status", job_id, check=True).stdout
    assert field(status, "Status") == "SUSPENDED"
    assert float(field(status, "SuspendedSeconds")) >= 0.4
    assert counted(daemon, job_id) == frozen

    viewer = daemon.run(
        "--cert", str(daemon.certs / "viewer-client-cert.pem"),
        "--key", str(daemon.certs / "viewer-client-key.pem"),
        "resume", job_id,
    )  # fmt: skip
    assert viewer.returncode == 1
    assert "role viewer is not allowed to perform operation resume_job" in viewer.stderr

    resumed = daemon.run("resume", job_id)
    assert resumed.returncode == 0, resumed.stderr
    numbers = until_counted(daemon, job_id, len(frozen) + 3)
    assert numbers == list(range(1, len(numbers) + 1))
    again = daemon.run("resume", job_id)
    assert again.returncode == 1
    assert f"job is not suspended: {job_id} (current status: RUNNING)" in again.stderr
    assert float(field(daemon.run("status", job_id).stdout, "CPUSeconds")) > 0


def test_a_suspended_job_survives_kill9_and_resumes_after_restart(daemon: Daemon) -> None:
    job_id = daemon.submit("sh", "-c", COUNTER)
    until_counted(daemon, job_id, 3)
    daemon.run("suspend", job_id, check=True)
    frozen = counted(daemon, job_id)

    daemon.kill9()
    time.sleep(0.3)
    daemon.start()
    assert field(daemon.run("status", job_id, check=True).stdout, "Status") == "SUSPENDED"
    assert counted(daemon, job_id) == frozen  # still frozen while no server ran

    daemon.run("resume", job_id, check=True)
    numbers = until_counted(daemon, job_id, len(frozen) + 3)
    assert numbers == list(range(1, len(numbers) + 1))
    stopped = daemon.run("stop", job_id, check=True).stdout
    assert "Status: STOPPED" in stopped
    assert float(field(daemon.run("status", job_id).stdout, "SuspendedSeconds")) >= 0.3


def test_run_with_network_none(daemon: Daemon) -> None:
    started = daemon.run("run", "--network=none", "cat", "/proc/net/dev", check=True).stdout
    assert started.splitlines()[-1] == "Network: none (isolated, loopback only)"
    job_id = field(started, "ID")
    assert daemon.wait(job_id)["status"] == "COMPLETED"
    with daemon.client() as c:
        lines = b"".join(c.logs(job_id)).decode().splitlines()[2:]
    assert [line.split(":")[0].strip() for line in lines] == ["lo"]
