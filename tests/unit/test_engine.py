"""JobEngine over the in-memory store and the fake runtime: no processes, no network."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from jobyard.domain.jobs import Job, JobSpec, Resources, new_job_id, utcnow
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine import EngineConfig, JobEngine
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime import ExitInfo, Handle, LaunchRequest
from jobyard.runtime.capacity import Capacity
from jobyard.runtime.fake import FakeRuntime
from jobyard.store import MemoryStore

ALICE = Identity("alice", Role.USER)

WAIT_SECONDS = 2.0
HOST = EngineConfig()
HOST_CAPACITY = Capacity(max_jobs=100, cpus=2, memory_mb=2048)


def bounded(**bounds: int) -> Capacity:
    """The fake host's capacity with ``bounds`` (max_jobs, max_cpu, max_memory) changed."""
    return dataclasses.replace(HOST_CAPACITY, **bounds)  # type: ignore[arg-type]


@dataclasses.dataclass
class Rig:
    store: MemoryStore
    runtime: FakeRuntime
    layout: JobLayout
    hub: LogHub
    engine: JobEngine

    def new_engine(self, config: EngineConfig = HOST) -> JobEngine:
        return JobEngine(self.store, self.runtime, self.layout, self.hub, config)


@contextlib.asynccontextmanager
async def rig_for(
    tmp_path: Path,
    config: EngineConfig = HOST,
    runtime: FakeRuntime | None = None,
    *,
    capacity: Capacity = HOST_CAPACITY,
) -> AsyncIterator[Rig]:
    layout = JobLayout(tmp_path)
    layout.prepare()
    hub = LogHub(layout)
    hub.start()
    store, runtime = MemoryStore(), runtime or FakeRuntime(capacity=capacity)
    engine = JobEngine(store, runtime, layout, hub, config)
    await engine.start()
    try:
        yield Rig(store, runtime, layout, hub, engine)
    finally:
        await engine.close()
        hub.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig_for(tmp_path) as r:
        yield r


async def until(condition: Callable[[], bool], what: str = "condition") -> None:
    """Poll (yielding to the loop) until ``condition`` holds; fail after WAIT_SECONDS."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while not condition():
                await asyncio.sleep(0.001)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def until_status(rig: Rig, job_id: str, status: Status) -> Job:
    await until(lambda: rig.store.get(job_id).status is status, f"{job_id} to be {status}")
    return rig.store.get(job_id)


def spec(**changes: object) -> JobSpec:
    return dataclasses.replace(JobSpec(command="sleep", args=("100",)), **changes)  # type: ignore[arg-type]


def history(job: Job) -> list[Status]:
    return [u.status for u in job.updates]


# -- submit and exit ---------------------------------------------------------------------------


async def test_submit_runs_the_job(rig: Rig) -> None:
    before = utcnow()
    job = await rig.engine.submit(ALICE, spec(name="nap"))
    assert job.status is Status.RUNNING
    assert job.owner == "alice"
    assert job.name == "nap"
    assert job.backend == "fake"
    assert job.started_at is not None and job.started_at >= before
    assert job.ended_at is None
    assert job.backend_id == f"fake-{job.id}"
    assert history(job) == [Status.QUEUED, Status.INITIALIZING, Status.RUNNING]
    launched = rig.runtime.started[job.id]
    assert (launched.spec.command, launched.spec.args) == ("sleep", ("100",))
    assert launched.output_path == rig.layout.output(job.id)
    assert launched.output_path.exists()
    assert rig.engine.job(ALICE, job.id[:8]) == rig.store.get(job.id)
    assert [j.id for j in rig.engine.jobs(ALICE)] == [job.id]


async def test_zero_limits_are_filled_from_the_defaults(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(resources=Resources(0, "", 0, 0, 0)))
    res = job.spec.resources
    assert (res.max_cpu, res.max_memory, res.max_iobps, res.max_pids) == (100, 512, 0, 1024)
    assert rig.runtime.started[job.id].spec.resources == res


async def test_given_limits_are_kept(rig: Rig) -> None:
    given = Resources(max_cpu=50, cpu_cores="1", max_memory=64, max_iobps=1000, max_pids=10)
    job = await rig.engine.submit(ALICE, spec(resources=given))
    assert job.spec.resources == given


async def test_configured_defaults_are_used(tmp_path: Path) -> None:
    config = dataclasses.replace(
        HOST, default_max_cpu=30, default_max_memory=128, default_max_iobps=5000
    )
    async with rig_for(tmp_path, config) as r:
        job = await r.engine.submit(ALICE, spec(resources=Resources(0, "", 0, 0, 0)))
    res = job.spec.resources
    assert (res.max_cpu, res.max_memory, res.max_iobps) == (30, 128, 5000)


@pytest.mark.parametrize(
    ("info", "status", "reason", "exit_code"),
    [
        (ExitInfo(exit_code=0), Status.COMPLETED, TerminationReason.EXITED, 0),
        (ExitInfo(exit_code=3), Status.FAILED, TerminationReason.EXITED, 3),
        (
            ExitInfo(exit_code=137, signal=signal.SIGKILL, oom_killed=True),
            Status.FAILED,
            TerminationReason.OOM_KILLED,
            137,
        ),
        (ExitInfo(exit_code=None, lost=True), Status.FAILED, TerminationReason.LOST, None),
    ],
    ids=["exit-0", "exit-3", "oom", "lost"],
)
async def test_exit_ends_the_job(
    rig: Rig, info: ExitInfo, status: Status, reason: TerminationReason, exit_code: int | None
) -> None:
    job = await rig.engine.submit(ALICE, spec())
    rig.runtime.finish(job.id, info)
    job = await until_status(rig, job.id, status)
    assert job.reason is reason
    assert job.exit_code == exit_code
    assert job.ended_at is not None and job.started_at is not None
    assert job.ended_at >= job.started_at
    assert history(job) == [Status.QUEUED, Status.INITIALIZING, Status.RUNNING, status]
    await until(lambda: job.id in rig.runtime.cleaned, "cleanup")


async def test_failure_message_says_why(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    rig.runtime.finish(job.id, ExitInfo(exit_code=3))
    job = await until_status(rig, job.id, Status.FAILED)
    assert "exit code 3" in job.message


async def test_ended_at_reported_by_the_runtime_is_kept(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    ended = utcnow()
    rig.runtime.finish(job.id, ExitInfo(exit_code=0, ended_at=ended))
    job = await until_status(rig, job.id, Status.COMPLETED)
    assert job.ended_at == ended


# -- stop ----------------------------------------------------------------------------------


async def test_stop_ends_the_job_as_stopped(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    job = await rig.engine.stop(ALICE, job.id)
    assert job.status is Status.STOPPED
    assert job.exit_code == -1
    assert job.reason is TerminationReason.USER_STOP
    assert job.ended_at is not None
    assert history(job)[-2:] == [Status.STOPPING, Status.STOPPED]


async def test_stop_accepts_an_id_prefix(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    assert (await rig.engine.stop(ALICE, job.id[:6])).status is Status.STOPPED


async def test_stop_racing_an_exit_ends_stopped_not_completed(rig: Rig) -> None:
    rig.runtime.ignore_stop = True  # the signals are sent, but the job exits on its own
    job = await rig.engine.submit(ALICE, spec())
    stopping = asyncio.create_task(rig.engine.stop(ALICE, job.id))
    await until_status(rig, job.id, Status.STOPPING)
    assert not stopping.done()
    rig.runtime.finish(job.id, ExitInfo(exit_code=0))
    job = await asyncio.wait_for(stopping, WAIT_SECONDS)
    assert job.status is Status.STOPPED
    assert job.exit_code == -1
    assert job.reason is TerminationReason.USER_STOP
    assert history(job)[-2:] == [Status.STOPPING, Status.STOPPED]


async def test_stop_of_a_completed_job_is_failed_precondition(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    rig.runtime.finish(job.id, ExitInfo(exit_code=0))
    await until_status(rig, job.id, Status.COMPLETED)
    with pytest.raises(FailedPrecondition) as info:
        await rig.engine.stop(ALICE, job.id)
    assert str(info.value) == f"job is not running: {job.id} (current status: COMPLETED)"
    assert rig.store.get(job.id).status is Status.COMPLETED


async def test_stop_of_an_unknown_job_is_not_found(rig: Rig) -> None:
    unknown = new_job_id()
    with pytest.raises(NotFound) as info:
        await rig.engine.stop(ALICE, unknown)
    assert str(info.value) == f"job not found: {unknown}"


class GatedRuntime(FakeRuntime):
    """A runtime whose ``start`` waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def start(self, request: LaunchRequest) -> Handle:
        await self.gate.wait()
        return await super().start(request)


async def test_stop_while_launching_ends_stopped(tmp_path: Path) -> None:
    runtime = GatedRuntime()
    async with rig_for(tmp_path, runtime=runtime) as r:
        submitting = asyncio.create_task(r.engine.submit(ALICE, spec()))
        await until(lambda: bool(r.store.list([Status.INITIALIZING])), "launch to begin")
        job_id = r.store.list()[0].id
        stopping = asyncio.create_task(r.engine.stop(ALICE, job_id))
        await until_status(r, job_id, Status.STOPPING)
        runtime.gate.set()
        await asyncio.wait_for(submitting, WAIT_SECONDS)
        job = await asyncio.wait_for(stopping, WAIT_SECONDS)
    assert job.status is Status.STOPPED
    assert job.reason is TerminationReason.USER_STOP
    assert Status.RUNNING not in history(job)


async def test_stop_while_a_launch_fails_ends_stopped(tmp_path: Path) -> None:
    runtime = GatedRuntime()
    runtime.fail_launch = "cgroup: cannot create"
    async with rig_for(tmp_path, runtime=runtime) as r:
        submitting = asyncio.create_task(r.engine.submit(ALICE, spec()))
        await until(lambda: bool(r.store.list([Status.INITIALIZING])), "launch to begin")
        job_id = r.store.list()[0].id
        stopping = asyncio.create_task(r.engine.stop(ALICE, job_id))
        try:
            await until_status(r, job_id, Status.STOPPING)
            runtime.gate.set()
            # The submitter is answered (the job was accepted), not handed a store race.
            await asyncio.wait_for(submitting, WAIT_SECONDS)
            job = await until_status(r, job_id, Status.STOPPED)
            assert job.ended_at is not None
        finally:
            stopping.cancel()
            submitting.cancel()
            await asyncio.gather(stopping, submitting, return_exceptions=True)


# -- launch errors and bad input -------------------------------------------------------------


async def test_launch_error_fails_the_job_and_frees_its_slot(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_jobs=1)) as r:
        r.runtime.fail_launch = "cpu limit: cannot write cpu.max"
        job = await r.engine.submit(ALICE, spec())
        assert job.status is Status.FAILED
        assert job.reason is TerminationReason.LAUNCH_ERROR
        assert "cpu limit: cannot write cpu.max" in job.message
        assert job.ended_at is not None
        assert job.started_at is None
        assert history(job) == [Status.QUEUED, Status.INITIALIZING, Status.FAILED]
        assert job.id not in r.runtime.started
        # The failed launch holds no capacity: the next job runs at once.
        second = await r.engine.submit(ALICE, spec())
        assert second.status is Status.RUNNING


@pytest.mark.parametrize(
    "bad",
    [
        spec(command=""),
        spec(args=("a\x00b",)),
        spec(environment={"BAD-NAME": "x"}),
        spec(resources=Resources(max_memory=-1)),
        spec(resources=Resources(cpu_cores="zero")),
        spec(name="no spaces please"),
    ],
    ids=["command", "nul", "env", "memory", "cores", "name"],
)
async def test_invalid_spec_creates_no_job(rig: Rig, bad: JobSpec) -> None:
    with pytest.raises(InvalidArgument):
        await rig.engine.submit(ALICE, bad)
    assert rig.store.list() == []
    assert rig.runtime.started == {}


@pytest.mark.parametrize(
    ("resources", "named"),
    [
        (Resources(max_cpu=201), "maxCPU"),
        (Resources(max_memory=2049), "maxMemory"),
        (Resources(cpu_cores="2"), "cpuCores"),
        (Resources(cpu_cores="0,1-2"), "cpuCores"),
    ],
)
async def test_limits_beyond_the_host_are_invalid(
    rig: Rig, resources: Resources, named: str
) -> None:
    with pytest.raises(InvalidArgument, match=named):
        await rig.engine.submit(ALICE, spec(resources=resources))
    assert rig.store.list() == []


async def test_limits_at_the_host_capacity_are_accepted(rig: Rig) -> None:
    res = Resources(max_cpu=200, max_memory=2048, cpu_cores="0-1")
    job = await rig.engine.submit(ALICE, spec(resources=res))
    assert job.status is Status.RUNNING


# -- capacity --------------------------------------------------------------------------------


async def test_jobs_beyond_capacity_wait_in_the_queue(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_jobs=1)) as r:
        first = await r.engine.submit(ALICE, spec())
        second = await r.engine.submit(ALICE, spec())
        third = await r.engine.submit(ALICE, spec())
        assert first.status is Status.RUNNING
        assert second.status is Status.QUEUED
        assert third.status is Status.QUEUED
        assert second.id not in r.runtime.started

        r.runtime.finish(first.id, ExitInfo(exit_code=0))
        await until_status(r, second.id, Status.RUNNING)
        assert r.store.get(first.id).status is Status.COMPLETED
        assert r.store.get(third.id).status is Status.QUEUED  # oldest first, one at a time

        await r.engine.stop(ALICE, second.id)
        await until_status(r, third.id, Status.RUNNING)


async def test_stop_of_a_queued_job_never_starts_it(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_jobs=1)) as r:
        first = await r.engine.submit(ALICE, spec())
        queued = await r.engine.submit(ALICE, spec())
        stopped = await r.engine.stop(ALICE, queued.id)
        assert stopped.status is Status.STOPPED
        assert stopped.reason is TerminationReason.USER_STOP
        r.runtime.finish(first.id, ExitInfo(exit_code=0))
        await until_status(r, first.id, Status.COMPLETED)
        assert queued.id not in r.runtime.started
        assert r.store.get(queued.id).status is Status.STOPPED


# -- output ----------------------------------------------------------------------------------


async def test_following_output_ends_when_the_job_ends(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    out = rig.runtime.started[job.id].output_path
    out.write_bytes(b"line 1\n")
    received = bytearray()

    async def follow() -> None:
        async for _, data in rig.engine.output(job, follow=True):
            received.extend(data)

    follower = asyncio.create_task(follow())
    await until(lambda: bytes(received) == b"line 1\n", "history")
    with out.open("ab") as f:
        f.write(b"line 2\n")
    rig.runtime.finish(job.id, ExitInfo(exit_code=0))
    await asyncio.wait_for(follower, WAIT_SECONDS)
    assert bytes(received) == b"line 1\nline 2\n"


async def test_following_a_queued_job_waits_for_its_output(tmp_path: Path) -> None:
    async with rig_for(tmp_path, capacity=bounded(max_jobs=1)) as r:
        first = await r.engine.submit(ALICE, spec())
        queued = await r.engine.submit(ALICE, spec())
        received = bytearray()

        async def follow() -> None:
            async for _, data in r.engine.output(queued, follow=True):
                received.extend(data)

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0)
        r.runtime.finish(first.id, ExitInfo(exit_code=0))
        await until_status(r, queued.id, Status.RUNNING)
        r.runtime.started[queued.id].output_path.write_bytes(b"hello\n")
        r.runtime.finish(queued.id, ExitInfo(exit_code=0))
        await asyncio.wait_for(follower, WAIT_SECONDS)
    assert bytes(received) == b"hello\n"


# -- restart and reconciliation --------------------------------------------------------------


async def test_a_new_engine_adopts_a_running_job(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    await rig.engine.close()

    again = rig.new_engine()
    await again.start()
    try:
        assert rig.store.get(job.id).status is Status.RUNNING
        rig.runtime.finish(job.id, ExitInfo(exit_code=0))
        done = await until_status(rig, job.id, Status.COMPLETED)
        assert done.exit_code == 0
        assert done.started_at == job.started_at
    finally:
        await again.close()


async def test_an_exit_while_no_engine_watched_is_seen_after_restart(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    await rig.engine.close()
    rig.runtime.finish(job.id, ExitInfo(exit_code=4))
    for _ in range(10):
        await asyncio.sleep(0)
    assert rig.store.get(job.id).status is Status.RUNNING  # nobody was watching

    again = rig.new_engine()
    await again.start()
    try:
        done = await until_status(rig, job.id, Status.FAILED)
        assert done.exit_code == 4
    finally:
        await again.close()


async def test_a_new_engine_can_stop_an_adopted_job(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    await rig.engine.close()
    again = rig.new_engine()
    await again.start()
    try:
        stopped = await again.stop(ALICE, job.id)
        assert stopped.status is Status.STOPPED
    finally:
        await again.close()


async def test_job_left_initializing_without_backend_id_ends_lost(rig: Rig) -> None:
    job_id = new_job_id()
    rig.store.create(
        Job(
            id=job_id,
            owner="alice",
            spec=spec(),
            status=Status.QUEUED,
            created_at=utcnow(),
            backend="fake",
        )
    )
    rig.store.transition(job_id, Status.INITIALIZING, "setting up isolation and resources")

    await rig.new_engine().start()
    job = rig.store.get(job_id)
    assert job.status is Status.FAILED
    assert job.reason is TerminationReason.LOST
    assert job.ended_at is not None
    assert job_id not in rig.runtime.started


async def test_start_admits_jobs_queued_by_an_earlier_server(rig: Rig) -> None:
    job_id = new_job_id()
    rig.store.create(
        Job(
            id=job_id,
            owner="alice",
            spec=spec(),
            status=Status.QUEUED,
            created_at=utcnow(),
            backend="fake",
        )
    )
    again = rig.new_engine()
    await again.start()
    try:
        assert rig.store.get(job_id).status is Status.RUNNING
        assert job_id in rig.runtime.started
    finally:
        await again.close()
