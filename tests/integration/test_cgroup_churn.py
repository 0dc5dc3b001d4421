"""Many jobs in a row leave nothing behind: no cgroups, no processes.

bench/spawn.py --churn 1000 does the same at 1,000 jobs and prints the counts; 200 keep this
test to a few seconds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from jobyard.client import Client
from jobyard.runtime.local.cgroups import CgroupV1, CgroupV2, detect_cgroups
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread

JOBS = 200
CLIENTS = 8


def hierarchies(root_name: str) -> list[Path]:
    """The server's cgroup root in every hierarchy the runtime uses."""
    driver = detect_cgroups(root_name=root_name)
    if isinstance(driver, CgroupV1):
        return [mount / root_name for mount in set(driver.mounts.values())]
    assert isinstance(driver, CgroupV2)
    return [driver.parent]


def job_cgroups(root_name: str) -> int:
    return sum(
        sum(1 for p in root.iterdir() if p.is_dir())
        for root in hierarchies(root_name)
        if root.is_dir()
    )


@pytest.fixture
def churn_server(tmp_path: Path, certs_dir: Path) -> Iterator[tuple[ServerThread, str]]:
    """A server with a cgroup root of its own: other tests' jobs do not count."""
    if root_problem():
        pytest.skip(root_problem() or "")
    root_name = f"jobyard-churn-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "config.yml"
    config.write_text(f"joblet:\n  maxConcurrentJobs: 100\njobyard:\n  cgroupRoot: {root_name}\n")
    server = ServerThread(tmp_path / "data", certs_dir, config_file=config)
    server.start()
    yield server, root_name
    server.close()
    for root in hierarchies(root_name):
        if root.is_dir():
            os.rmdir(root)


def test_many_jobs_in_a_row_leave_no_cgroups_behind(
    churn_server: tuple[ServerThread, str], certs_dir: Path
) -> None:
    server, root_name = churn_server
    with Client(
        f"localhost:{server.port}",
        certs_dir / "admin-client-cert.pem",
        certs_dir / "admin-client-key.pem",
        certs_dir / "ca-cert.pem",
    ) as client:

        def run_one(i: int) -> str:
            job = client.submit("sh", ["-c", f"echo {i}"])
            return client.wait(job.id, timeout=60).status

        assert run_one(-1) == "COMPLETED"  # creates the cgroup root in each hierarchy
        before = job_cgroups(root_name)
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(pool.map(run_one, range(JOBS)))
        after = job_cgroups(root_name)

    assert statuses == ["COMPLETED"] * JOBS
    assert (before, after) == (0, 0)
    assert all(root.is_dir() for root in hierarchies(root_name))  # the roots stay, empty
    assert server.running is not None and server.running.engine.watching == 0
