"""Suspend, resume and usage in the engine, over the in-memory store and a fake runtime."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import FailedPrecondition
from jobyard.domain.jobs import Job, Usage
from jobyard.domain.status import Status
from jobyard.runtime import ExitInfo, Handle
from jobyard.runtime.fake import FakeRuntime
from tests.unit.test_engine import Rig, history, rig_for, spec, until, until_status

ALICE = Identity("alice", Role.USER)

USED = Usage(cpu_seconds=1.5, memory_peak_bytes=64 << 20, memory_current_bytes=8 << 20)


class CountingRuntime(FakeRuntime):
    """Reports :data:`USED` for every job; ``on_suspend`` runs inside ``suspend``."""

    def __init__(self) -> None:
        super().__init__()
        self.on_suspend: list[str] = []  # job ids to stop while freezing (a race)
        self.rig: Rig | None = None

    async def usage(self, job_id: str, handle: Handle) -> Usage:
        return USED

    async def suspend(self, job_id: str, handle: Handle) -> None:
        await super().suspend(job_id, handle)
        if job_id in self.on_suspend and self.rig is not None:
            self.rig.store.transition(job_id, Status.STOPPING, "a stop raced the suspend")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    runtime = CountingRuntime()
    async with rig_for(tmp_path, runtime=runtime) as r:
        runtime.rig = r
        yield r


async def running(rig: Rig) -> Job:
    return await rig.engine.submit(ALICE, spec())


# -- suspend and resume -------------------------------------------------------------------


async def test_suspend_freezes_and_resume_thaws(rig: Rig) -> None:
    job = await running(rig)
    suspended = await rig.engine.suspend(ALICE, job.id[:8])
    assert suspended.status is Status.SUSPENDED
    assert suspended.suspended_at is not None
    assert job.id in rig.runtime.suspended

    resumed = await rig.engine.resume(ALICE, job.id)
    assert resumed.status is Status.RUNNING
    assert job.id not in rig.runtime.suspended
    assert resumed.suspended_at is None
    assert resumed.suspended_seconds > 0
    assert history(resumed)[-2:] == [Status.SUSPENDED, Status.RUNNING]


async def test_suspended_time_adds_up_over_periods(rig: Rig) -> None:
    job = await running(rig)
    for _ in range(2):
        await rig.engine.suspend(ALICE, job.id)
        # Backdate the open period: exactly 10 s suspended each time.
        opened = rig.store.get(job.id).suspended_at
        assert opened is not None
        rig.store.update(job.id, suspended_at=opened - timedelta(seconds=10))
        job = await rig.engine.resume(ALICE, job.id)
    assert 20 <= job.suspended_seconds < 21


async def test_open_period_counts_while_suspended(rig: Rig) -> None:
    job = await running(rig)
    job = await rig.engine.suspend(ALICE, job.id)
    assert job.suspended_at is not None
    later = job.suspended_at + timedelta(seconds=5)
    assert job.suspended_seconds_at(later) == pytest.approx(5)


@pytest.mark.parametrize("finish", [True, False], ids=["completed", "suspended"])
async def test_suspend_of_a_job_not_running_is_refused(rig: Rig, finish: bool) -> None:
    job = await running(rig)
    if finish:
        rig.runtime.finish(job.id, ExitInfo(exit_code=0))
        await until_status(rig, job.id, Status.COMPLETED)
        expected = f"job is not running: {job.id} (current status: COMPLETED)"
    else:
        await rig.engine.suspend(ALICE, job.id)
        expected = f"job is not running: {job.id} (current status: SUSPENDED)"
    with pytest.raises(FailedPrecondition) as err:
        await rig.engine.suspend(ALICE, job.id)
    assert str(err.value) == expected


async def test_resume_of_a_running_job_is_refused(rig: Rig) -> None:
    job = await running(rig)
    with pytest.raises(FailedPrecondition, match=r"job is not suspended: .* RUNNING"):
        await rig.engine.resume(ALICE, job.id)


async def test_a_stop_racing_a_suspend_wins_and_the_job_is_thawed(rig: Rig) -> None:
    assert isinstance(rig.runtime, CountingRuntime)
    rig.runtime.ignore_stop = True
    job = await running(rig)
    rig.runtime.on_suspend.append(job.id)
    with pytest.raises(FailedPrecondition, match="current status: STOPPING"):
        await rig.engine.suspend(ALICE, job.id)
    assert job.id not in rig.runtime.suspended  # never left frozen


async def test_stop_of_a_suspended_job_closes_the_period(rig: Rig) -> None:
    job = await running(rig)
    await rig.engine.suspend(ALICE, job.id)
    job = await rig.engine.stop(ALICE, job.id)
    assert job.status is Status.STOPPED
    assert job.suspended_at is None
    assert job.suspended_seconds > 0


# -- usage --------------------------------------------------------------------------------


async def test_usage_is_recorded_when_the_job_ends(rig: Rig) -> None:
    job = await running(rig)
    assert job.usage is None
    rig.runtime.finish(job.id, ExitInfo(exit_code=0))
    job = await until_status(rig, job.id, Status.COMPLETED)
    # Nothing runs any more: no current memory, the rest as the runtime reported it.
    assert job.usage == dataclasses.replace(USED, memory_current_bytes=0)


async def test_details_are_live_while_running_and_recorded_after(rig: Rig) -> None:
    job = await running(rig)
    rig.layout.output(job.id).write_bytes(b"12345")
    live = await rig.engine.details(ALICE, job.id)
    assert (live.usage, live.output_bytes) == (USED, 5)

    rig.runtime.finish(job.id, ExitInfo(exit_code=0))
    await until_status(rig, job.id, Status.COMPLETED)
    ended = await rig.engine.details(ALICE, job.id)
    assert ended.usage == dataclasses.replace(USED, memory_current_bytes=0)


async def test_a_failing_usage_read_does_not_stop_the_end_being_recorded(
    tmp_path: Path,
) -> None:
    class Broken(FakeRuntime):
        async def usage(self, job_id: str, handle: Handle) -> Usage:
            raise OSError("cgroup gone")

    async with rig_for(tmp_path, runtime=Broken()) as r:
        job = await r.engine.submit(ALICE, spec())
        assert (await r.engine.details(ALICE, job.id)).usage is None
        r.runtime.finish(job.id, ExitInfo(exit_code=0))
        job = await until_status(r, job.id, Status.COMPLETED)
        assert job.usage is None
        await until(lambda: job.id in r.runtime.cleaned, "cleanup")
