"""Engine: time limits, extension, scheduled starts, capacity bounds, delete (fake runtime)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobyard.config import format_duration
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from jobyard.domain.jobs import MAX_TIME_LIMIT_SECONDS, Job, Resources, utcnow
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine.timing import EXPIRY_TIMER, START_TIMER
from jobyard.runtime import ExitInfo
from jobyard.store.base import JobQuery
from tests.unit.test_engine import HOST, Rig, bounded, rig_for, spec, until_status

ALICE = Identity("alice", Role.USER)

SHORT = 0.2  # seconds: a time limit or a start delay that passes during a test


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig_for(tmp_path) as r:
        yield r


def messages(job: Job) -> list[tuple[Status, str]]:
    return [(u.status, u.message) for u in job.updates]


# -- time limits --------------------------------------------------------------------------------


async def test_a_job_is_stopped_when_its_time_limit_is_reached(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=SHORT))
    assert job.started_at is not None
    assert job.expires_at == job.started_at + timedelta(seconds=SHORT)

    done = await until_status(rig, job.id, Status.STOPPED)

    assert done.reason is TerminationReason.TIME_LIMIT
    assert done.message == "stopped: time limit reached"
    assert done.exit_code == -1
    assert messages(done)[-2:] == [
        (Status.STOPPING, "time limit reached: signals sent"),
        (Status.STOPPED, "stopped: time limit reached"),
    ]
    assert done.ended_at is not None and done.ended_at >= done.expires_at  # type: ignore[operator]


async def test_a_job_without_a_limit_has_no_expiry(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    assert (job.spec.time_limit_seconds, job.expires_at) == (0, None)
    assert rig.engine._timers.armed(job.id) == set()


async def test_the_configured_job_timeout_is_the_default_limit(tmp_path: Path) -> None:
    config = dataclasses.replace(HOST, default_time_limit_seconds=3600)
    async with rig_for(tmp_path, config) as r:
        job = await r.engine.submit(ALICE, spec())
        given = await r.engine.submit(ALICE, spec(time_limit_seconds=60))
    assert job.spec.time_limit_seconds == 3600
    assert job.expires_at == job.started_at + timedelta(hours=1)  # type: ignore[operator]
    assert given.spec.time_limit_seconds == 60


async def test_a_job_that_ends_first_cancels_its_timer(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=60))
    assert rig.engine._timers.armed(job.id) == {EXPIRY_TIMER}
    rig.runtime.finish(job.id, ExitInfo(exit_code=0))
    await until_status(rig, job.id, Status.COMPLETED)
    assert rig.engine._timers.armed(job.id) == set()


async def test_extend_moves_the_expiry_and_records_it(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=SHORT))
    seen: list[Job] = []
    async with rig.engine.events.subscribe([job.id]) as events:
        extended = await rig.engine.extend(ALICE, job.id[:8], 90)
        seen.append(await anext(events))

    assert extended.spec.time_limit_seconds == pytest.approx(SHORT + 90)
    assert extended.expires_at == job.started_at + timedelta(seconds=SHORT + 90)  # type: ignore[operator]
    status, message = messages(extended)[-1]
    assert status is Status.RUNNING
    assert message.startswith("time limit extended by 1m30s; expires at ")
    assert seen == [extended]
    await asyncio.sleep(SHORT * 2)
    assert rig.store.get(job.id).status is Status.RUNNING  # the old expiry passed harmlessly


async def test_extend_of_a_queued_job_grows_its_limit(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_jobs=1)) as r:
        await r.engine.submit(ALICE, spec())
        queued = await r.engine.submit(ALICE, spec(time_limit_seconds=60))
        extended = await r.engine.extend(ALICE, queued.id, 60)
    assert (extended.status, extended.expires_at) == (Status.QUEUED, None)
    assert extended.spec.time_limit_seconds == 120
    assert messages(extended)[-1] == (Status.QUEUED, "time limit extended by 1m")


@pytest.mark.parametrize("seconds", [0, -5])
async def test_extend_by_nothing_is_invalid(rig: Rig, seconds: float) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=60))
    with pytest.raises(InvalidArgument, match="must be a positive number"):
        await rig.engine.extend(ALICE, job.id, seconds)
    assert rig.store.get(job.id) == job


async def test_extend_beyond_the_maximum_is_invalid(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=60))
    with pytest.raises(InvalidArgument, match="would exceed"):
        await rig.engine.extend(ALICE, job.id, MAX_TIME_LIMIT_SECONDS)


async def test_extend_of_a_finished_job_is_failed_precondition(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=60))
    await rig.engine.stop(ALICE, job.id)
    with pytest.raises(FailedPrecondition, match=r"job is not running: .* STOPPED\)"):
        await rig.engine.extend(ALICE, job.id, 60)


async def test_extend_of_a_job_without_a_limit_is_failed_precondition(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    with pytest.raises(FailedPrecondition, match="has no time limit"):
        await rig.engine.extend(ALICE, job.id, 60)


async def test_extend_of_an_unknown_job_is_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.engine.extend(ALICE, "00000000-0000-4000-8000-000000000000", 60)


async def test_a_restarted_engine_rearms_the_time_limit(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=SHORT * 2))
    await rig.engine.close()
    again = rig.new_engine()
    await again.start()
    try:
        assert again._timers.armed(job.id) == {EXPIRY_TIMER}
        done = await until_status(rig, job.id, Status.STOPPED)
        assert done.reason is TerminationReason.TIME_LIMIT
    finally:
        await again.close()


async def test_a_limit_that_passed_while_no_server_ran_stops_the_job_at_start(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(time_limit_seconds=SHORT))
    await rig.engine.close()
    await asyncio.sleep(SHORT * 1.5)
    assert rig.store.get(job.id).status is Status.RUNNING
    again = rig.new_engine()
    await again.start()
    try:
        done = await until_status(rig, job.id, Status.STOPPED)
        assert done.reason is TerminationReason.TIME_LIMIT
    finally:
        await again.close()


def test_durations_read_as_people_write_them() -> None:
    assert [format_duration(s) for s in (0, 59.6, 90, 3600, 5400, 90061)] == [
        "0s", "1m", "1m30s", "1h", "1h30m", "1d1h1m1s",
    ]  # fmt: skip


# -- scheduled starts ----------------------------------------------------------------------


async def test_a_scheduled_job_waits_then_starts(rig: Rig) -> None:
    when = utcnow() + timedelta(seconds=SHORT)
    job = await rig.engine.submit(ALICE, spec(schedule=when))
    assert job.status is Status.SCHEDULED
    assert job.message.startswith("scheduled to start at ")
    assert job.id not in rig.runtime.started

    running = await until_status(rig, job.id, Status.RUNNING)

    assert running.started_at is not None and running.started_at >= when
    assert [s for s, _ in messages(running)] == [
        Status.SCHEDULED, Status.QUEUED, Status.INITIALIZING, Status.RUNNING,
    ]  # fmt: skip


async def test_a_time_in_the_past_starts_now(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(schedule=utcnow() - timedelta(hours=1)))
    assert job.status is Status.RUNNING


async def test_a_scheduled_job_stopped_before_its_time_never_starts(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(schedule=utcnow() + timedelta(seconds=SHORT)))
    stopped = await rig.engine.stop(ALICE, job.id)
    assert (stopped.status, stopped.reason) == (Status.STOPPED, TerminationReason.USER_STOP)
    assert rig.engine._timers.armed(job.id) == set()
    await asyncio.sleep(SHORT * 2)
    assert job.id not in rig.runtime.started


async def test_a_scheduled_job_survives_a_restart(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(schedule=utcnow() + timedelta(seconds=SHORT)))
    await rig.engine.close()
    again = rig.new_engine()
    await again.start()
    try:
        assert again._timers.armed(job.id) == {START_TIMER}
        await until_status(rig, job.id, Status.RUNNING)
    finally:
        await again.close()


# -- capacity -----------------------------------------------------------------------------------


def cpu(percent: int, memory: int = 64) -> Resources:
    return Resources(max_cpu=percent, max_memory=memory)


async def test_total_cpu_bounds_admission_in_submission_order(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_cpu=200)) as r:
        first = await r.engine.submit(ALICE, spec(resources=cpu(100)))
        big = await r.engine.submit(ALICE, spec(resources=cpu(150)))
        small = await r.engine.submit(ALICE, spec(resources=cpu(50)))
        # 50% would fit beside the first job, but the older big one is ahead of it.
        assert (big.status, small.status) == (Status.QUEUED, Status.QUEUED)
        assert big.message == "waiting in the queue"

        r.runtime.finish(first.id, ExitInfo(exit_code=0))
        await until_status(r, big.id, Status.RUNNING)
        await until_status(r, small.id, Status.RUNNING)  # 150 + 50 fits


async def test_total_memory_bounds_admission(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_memory=100)) as r:
        first = await r.engine.submit(ALICE, spec(resources=cpu(10, memory=60)))
        second = await r.engine.submit(ALICE, spec(resources=cpu(10, memory=60)))
        assert second.status is Status.QUEUED
        await r.engine.stop(ALICE, first.id)
        await until_status(r, second.id, Status.RUNNING)


async def test_an_unlimited_job_counts_as_the_whole_bound(tmp_path: Path) -> None:
    config = dataclasses.replace(HOST, default_max_cpu=0)
    async with rig_for(tmp_path, config, capacity=bounded(max_cpu=200)) as r:
        small = await r.engine.submit(ALICE, spec(resources=cpu(10)))
        unlimited = await r.engine.submit(ALICE, spec(resources=cpu(0)))
        assert unlimited.spec.resources.max_cpu == 0
        assert unlimited.status is Status.QUEUED
        await r.engine.stop(ALICE, small.id)
        await until_status(r, unlimited.id, Status.RUNNING)


@pytest.mark.parametrize(
    ("bounds", "resources", "match"),
    [
        ({"max_cpu": 150}, cpu(200), r"maxCPU 200% exceeds .* \(150%, jobyard.maxTotalCpu\)"),
        ({"max_memory": 100}, cpu(10, 200), r"maxMemory 200 MB exceeds .*maxTotalMemory"),
    ],
)
async def test_a_job_bigger_than_the_bound_is_refused_at_submit(
    tmp_path: Path, bounds: dict[str, int], resources: Resources, match: str
) -> None:
    async with rig_for(tmp_path, capacity=bounded(**bounds)) as r:
        with pytest.raises(InvalidArgument, match=match):
            await r.engine.submit(ALICE, spec(resources=resources))
        assert r.engine.jobs(ALICE) == []


# -- delete and query ---------------------------------------------------------------------------


async def test_delete_removes_a_finished_job_and_its_directory(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    await rig.engine.stop(ALICE, job.id)
    assert rig.layout.job_dir(job.id).exists()

    deleted = await rig.engine.delete(ALICE, job.id[:8])

    assert deleted.id == job.id
    assert not rig.layout.job_dir(job.id).exists()
    with pytest.raises(NotFound):
        rig.engine.job(ALICE, job.id)


@pytest.mark.parametrize("schedule", [False, True])
async def test_delete_of_an_unfinished_job_is_failed_precondition(rig: Rig, schedule: bool) -> None:
    when = utcnow() + timedelta(hours=1) if schedule else None
    job = await rig.engine.submit(ALICE, spec(schedule=when))
    with pytest.raises(FailedPrecondition, match=r"job is not finished: .*\(current status: "):
        await rig.engine.delete(ALICE, job.id)
    assert rig.engine.job(ALICE, job.id).status is job.status
    assert rig.layout.job_dir(job.id).exists()


async def test_query_pages_newest_first(rig: Rig) -> None:
    ids = [(await rig.engine.submit(ALICE, spec(labels={"n": str(i)}))).id for i in range(3)]
    page, token = rig.engine.query(ALICE, JobQuery(page_size=2))
    assert [j.id for j in page] == ids[:0:-1]
    rest, end = rig.engine.query(ALICE, JobQuery(page_size=2, page_token=token))
    assert ([j.id for j in rest], end) == ([ids[0]], "")


# -- recorded times follow their causes -----------------------------------------------------


async def test_an_end_stamped_by_a_lagging_clock_is_not_recorded_before_its_stop(
    rig: Rig,
) -> None:
    # The local runtime reads the end from the exit file's mtime, which the kernel stamps
    # from a coarse clock up to a tick behind: the end must still follow the stop it ended.
    job = await rig.engine.submit(ALICE, spec())
    rig.runtime.ignore_stop = True
    stop = asyncio.create_task(rig.engine.stop(ALICE, job.id))
    stopping = await until_status(rig, job.id, Status.STOPPING)
    lagging = stopping.updates[-1].timestamp - timedelta(milliseconds=3)
    rig.runtime.finish(job.id, ExitInfo(exit_code=-9, signal=9, ended_at=lagging))
    done = await stop

    assert done.status is Status.STOPPED
    assert done.ended_at is not None and done.started_at is not None
    assert done.ended_at >= stopping.updates[-1].timestamp >= done.started_at


async def test_a_quick_job_never_ends_before_it_started(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    assert job.started_at is not None
    stamped = job.started_at - timedelta(milliseconds=4)
    rig.runtime.finish(job.id, ExitInfo(exit_code=0, ended_at=stamped))
    done = await until_status(rig, job.id, Status.COMPLETED)
    assert done.ended_at is not None and done.ended_at >= job.started_at


async def test_a_schedule_is_kept_to_the_millisecond_rounded_up(rig: Rig) -> None:
    # The API shows times cut to milliseconds: a start at or after a microsecond schedule
    # must not show as before it.
    when = utcnow() + timedelta(seconds=SHORT)
    when = when.replace(microsecond=when.microsecond // 1000 * 1000 + 400)
    job = await rig.engine.submit(ALICE, spec(schedule=when))
    assert job.spec.schedule == when + timedelta(microseconds=600)

    running = await until_status(rig, job.id, Status.RUNNING)
    assert running.started_at is not None
    shown = running.started_at.replace(microsecond=running.started_at.microsecond // 1000 * 1000)
    assert shown >= when
