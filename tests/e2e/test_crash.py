"""kill -9 of the daemon: nothing acknowledged is lost and running jobs end truthfully."""

from __future__ import annotations

import time

import pytest

from tests.conftest import root_problem
from tests.e2e.daemon import Daemon

pytestmark = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")


def test_a_running_job_survives_kill9_and_reports_its_true_end(daemon: Daemon) -> None:
    with daemon.client() as c:
        job = c.submit("sh", ["-c", "echo before; sleep 1.5; echo after; exit 3"])
        deadline = time.monotonic() + 10
        while b"before" not in b"".join(c.logs(job.id, follow=False)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    daemon.kill9()
    daemon.start()
    with daemon.client() as c:
        done = c.wait(job.id, timeout=30)
        assert (done.status, done.exit_code) == ("FAILED", 3)
        assert b"".join(c.logs(job.id)) == b"before\nafter\n"
    assert "job adopted" in daemon.log()


def test_a_job_that_ended_while_the_server_was_down_shows_its_exit(daemon: Daemon) -> None:
    with daemon.client() as c:
        job = c.submit("sh", ["-c", "sleep 0.5; echo finished"])
        while c.job(job.id).status != "RUNNING":
            time.sleep(0.02)
    daemon.kill9()
    time.sleep(1.5)  # the job ends while no server runs
    daemon.start()
    with daemon.client() as c:
        done = c.wait(job.id, timeout=30)
        assert (done.status, done.exit_code) == ("COMPLETED", 0)
        assert b"".join(c.logs(job.id)) == b"finished\n"


def test_an_answered_run_exists_after_kill9(daemon: Daemon) -> None:
    with daemon.client() as c:
        ids = [c.submit("true").id for _ in range(5)]
    daemon.kill9()
    daemon.start()
    with daemon.client() as c:
        known = {j.id: j for j in c.jobs()}
        for job_id in ids:
            assert job_id in known
            assert c.wait(job_id, timeout=30).status == "COMPLETED"
