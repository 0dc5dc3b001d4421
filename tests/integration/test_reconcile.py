"""A server that died between starting a job and recording the start: the next server
ends the job truthfully (LOST) and leaves none of its processes or cgroups behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from jobyard.domain.jobs import Job, JobSpec, new_job_id, utcnow
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine import EngineConfig, JobEngine
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local import LocalRuntime, LocalRuntimeConfig
from jobyard.store import SQLiteStore
from tests.conftest import root_problem

pytestmark = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")


async def test_an_unrecorded_launch_is_lost_and_released(tmp_path: Path) -> None:
    layout = JobLayout(tmp_path / "data")
    layout.prepare()
    store = SQLiteStore(layout.database)
    runtime = LocalRuntime(LocalRuntimeConfig(cgroup_root="jobyard-test"))
    job = Job(new_job_id(), "alice", JobSpec("sleep", ("100",)), Status.INITIALIZING, utcnow())
    store.create(job)  # as the dead server left it: launching, no handle recorded
    layout.create_job_dir(job.id)
    await runtime.start(
        LaunchRequest(job.id, job.spec, layout.output(job.id), layout.state_dir(job.id),
                      layout.workdir(job.id))
    )  # fmt: skip
    cgroup = runtime.cgroups.job(job.id)
    deadline = time.monotonic() + 10
    # Until the launch chain has exec'ed the command, its setup steps (mount) show too.
    while [_comm(pid) for pid in cgroup.pids()] != ["sleep"]:
        assert time.monotonic() < deadline, "the orphan did not start"
        await asyncio.sleep(0.01)
    [orphan] = cgroup.pids()

    hub = LogHub(layout)
    hub.start()
    engine = JobEngine(store, runtime, layout, hub, EngineConfig())
    try:
        await engine.start()
        ended = store.get(job.id)
    finally:
        await engine.close()
        hub.close()
        store.close()

    assert (ended.status, ended.reason) == (Status.FAILED, TerminationReason.LOST)
    assert not cgroup.exists()
    assert not Path(f"/proc/{orphan}").exists()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
