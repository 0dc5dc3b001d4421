"""`jobyard log` as a user runs it: --tail, and -f across a restart of the daemon."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.conftest import root_problem
from tests.e2e.daemon import COMMAND_TIMEOUT_SECONDS, Daemon, jobyard_argv

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(root_problem() is not None, reason=root_problem() or ""),
]

# About 4 s of numbered lines, long enough to restart the daemon in the middle.
COUNTER = "for i in $(seq 1 80); do echo line $i; sleep 0.05; done"


def output_file(daemon: Daemon, job_id: str) -> bytes:
    return (daemon.root / "data" / "jobs" / job_id / "output.log").read_bytes()


def restart(daemon: Daemon, how: str, down_seconds: float) -> None:
    """Stop the daemon without stopping its jobs (SIGTERM or kill -9), then start it."""
    assert daemon.process is not None
    if how == "kill -9":
        daemon.kill9()
    else:
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(COMMAND_TIMEOUT_SECONDS)
        daemon.process = None
    time.sleep(down_seconds)  # the follower retries against a closed port meanwhile
    daemon.start()


@pytest.mark.parametrize(("how", "down_seconds"), [("SIGTERM", 3.0), ("kill -9", 0.5)])
def test_log_follow_resumes_across_a_restart_with_every_byte_once(
    daemon: Daemon, how: str, down_seconds: float
) -> None:
    job_id = daemon.submit("sh", "-c", COUNTER)
    follower = subprocess.Popen(
        [*jobyard_argv(), "log", "-f", job_id],
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.5)
    restart(daemon, how, down_seconds)
    out, err = follower.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    assert follower.returncode == 0, err.decode()
    assert daemon.wait(job_id)["status"] == "COMPLETED"
    assert out == output_file(daemon, job_id)
    assert out == b"".join(f"line {i}\n".encode() for i in range(1, 81))
    assert "jobyard: log stream interrupted" in err.decode()
    assert "resuming from offset" in err.decode()


def test_log_tail_prints_the_last_lines(daemon: Daemon) -> None:
    job_id = daemon.submit("seq", "1", "1000")
    daemon.wait(job_id)
    result = daemon.run_bytes("log", "--tail", "3", "--follow=false", job_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"998\n999\n1000\n"


def test_log_tail_then_follow_goes_on_live(daemon: Daemon) -> None:
    # "six" is written only when the job is stopped, after the tail has been read: the CLI's
    # start-up time on a loaded machine cannot move it into the tail.
    script = "trap 'echo six; exit 0' TERM; seq 1 5; sleep 60 & wait"
    job_id = daemon.submit("sh", "-c", script)
    deadline = time.monotonic() + 10
    with daemon.client() as c:
        while b"5\n" not in b"".join(c.logs(job_id, follow=False)):
            assert time.monotonic() < deadline, "the job never printed its first lines"
            time.sleep(0.02)
    with subprocess.Popen(
        [*jobyard_argv(), "log", "--tail", "2", job_id], env=daemon.env, stdout=subprocess.PIPE
    ) as tail:
        assert tail.stdout is not None
        head = tail.stdout.readline() + tail.stdout.readline()
        assert daemon.run("stop", job_id).returncode == 0
        rest = tail.stdout.read()
        assert tail.wait(timeout=30) == 0
    assert head + rest == b"4\n5\nsix\n"


def test_log_of_an_unknown_job_says_so(daemon: Daemon) -> None:
    result = daemon.run("log", "--tail", "1", "00000000-0000-4000-8000-000000000000")
    assert result.returncode == 1
    assert "job not found" in result.stderr
