"""Group commit keeps "answered means durable": kill -9 under load loses no answered RunJob."""

from __future__ import annotations

import random
import threading
import time

import pytest

from jobyard.domain.errors import JobyardError
from tests.conftest import root_problem
from tests.e2e.daemon import TERMINAL, Daemon

pytestmark = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")

CLIENTS = 4
# Most jobs wait in the queue, so RunJob answers without a launch in between: the commit
# is then all that stands between the answer and a lost job.
CONFIG = "joblet:\n  maxConcurrentJobs: 2\n"
ANSWERED_BEFORE_KILL = 40  # then the kill comes at a random moment within the next burst
WAIT_SECONDS = 60.0


def submitter(daemon: Daemon, answered: list[str], dead: threading.Event) -> None:
    """RunJob after RunJob until the daemon dies; records only what was answered."""
    with daemon.client() as c:
        while not dead.is_set():
            try:
                job = c.submit("true")
            except JobyardError:
                return  # this call met the kill: it was never answered
            answered.append(job.id)


def test_every_answered_run_exists_after_a_kill9_under_load(daemon: Daemon) -> None:
    (daemon.root / "config.yml").write_text(CONFIG)
    daemon.stop()
    daemon.start("--config", "config.yml")
    answered: list[str] = []  # list.append is atomic; every thread only appends
    dead = threading.Event()
    threads = [
        threading.Thread(target=submitter, args=(daemon, answered, dead)) for _ in range(CLIENTS)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while len(answered) < ANSWERED_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.uniform(0, 0.2))  # a random moment: mid-batch, mid-launch, mid-exit
    daemon.kill9()
    dead.set()
    for t in threads:
        t.join(WAIT_SECONDS)
    seen = list(answered)  # answered before the kill (a call cut by it raised instead)
    assert len(seen) >= ANSWERED_BEFORE_KILL, f"only {len(seen)} RunJobs answered under load"

    daemon.start("--config", "config.yml")
    with daemon.client() as c:
        known = {j.id: j for j in c.jobs()}
        missing = [job_id for job_id in seen if job_id not in known]
        assert missing == [], f"{len(missing)} of {len(seen)} answered jobs lost"
        ends = {c.wait(job_id, timeout=WAIT_SECONDS).status for job_id in seen}
    # Each ran, or (caught mid-launch by the kill) was ended truthfully by the restart.
    assert ends <= set(TERMINAL)
