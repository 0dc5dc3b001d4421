"""Engine: the registry of backends, per-backend capacity, and a backend that queues."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine import JobEngine
from jobyard.engine.backends import Backends
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime import ExitInfo
from jobyard.runtime.capacity import Capacity
from jobyard.runtime.fake import FakeRuntime
from jobyard.store import MemoryStore
from tests.unit.test_engine import HOST, spec, until

ALICE = Identity("alice", Role.USER)


@dataclasses.dataclass
class Rig:
    store: MemoryStore
    local: FakeRuntime
    batch: FakeRuntime  # queues, as Slurm does
    layout: JobLayout
    hub: LogHub
    engine: JobEngine

    def new_engine(self) -> JobEngine:
        backends = Backends([self.local, self.batch])
        return JobEngine(self.store, backends, self.layout, self.hub, HOST)

    async def status(self, job_id: str, status: Status) -> None:
        await until(lambda: self.store.get(job_id).status is status, f"{job_id} {status}")


@contextlib.asynccontextmanager
async def rig_for(tmp_path: Path, local_jobs: int = 100) -> AsyncIterator[Rig]:
    layout = JobLayout(tmp_path)
    layout.prepare()
    hub = LogHub(layout)
    hub.start()
    local = FakeRuntime(name="local", capacity=Capacity(max_jobs=local_jobs, cpus=2))
    batch = FakeRuntime(name="batch", queues=True, capacity=Capacity(cpus=64, memory_mb=4096))
    store = MemoryStore()
    engine = JobEngine(store, Backends([local, batch]), layout, hub, HOST)
    await engine.start()
    try:
        yield Rig(store, local, batch, layout, hub, engine)
    finally:
        await engine.close()
        hub.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig_for(tmp_path) as r:
        yield r


async def test_a_job_runs_on_the_default_backend_unless_it_names_one(rig: Rig) -> None:
    default = await rig.engine.submit(ALICE, spec())
    batch = await rig.engine.submit(ALICE, spec(backend="batch"))
    assert (default.backend, batch.backend) == ("local", "batch")
    assert default.id in rig.local.started and default.id not in rig.batch.started
    assert batch.id in rig.batch.started and batch.id not in rig.local.started


async def test_an_unknown_backend_is_refused_naming_those_the_server_has(rig: Rig) -> None:
    with pytest.raises(
        InvalidArgument, match=r"invalid backend 'slurm': this server has local, batch"
    ):
        await rig.engine.submit(ALICE, spec(backend="slurm"))
    assert rig.store.list() == []


async def test_each_backend_checks_its_own_limits(rig: Rig) -> None:
    big = dataclasses.replace(spec().resources, max_cpu=800)  # 8 cores: local has 2
    with pytest.raises(InvalidArgument, match=r"maxCPU 800% exceeds system limits \(2 cores"):
        await rig.engine.submit(ALICE, spec(resources=big))
    job = await rig.engine.submit(ALICE, spec(resources=big, backend="batch"))
    assert job.status is Status.QUEUED


async def test_a_queued_backend_job_is_running_only_once_the_backend_says_so(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(backend="batch"))
    assert job.status is Status.QUEUED
    assert job.backend_id == f"fake-{job.id}"
    assert job.started_at is None
    assert job.updates[-1].message == f"waiting in the batch queue (backend id fake-{job.id})"
    rig.batch.begin(job.id)
    await rig.status(job.id, Status.RUNNING)
    assert rig.store.get(job.id).started_at is not None
    rig.batch.finish(job.id, ExitInfo(exit_code=3))
    await rig.status(job.id, Status.FAILED)
    ended = rig.store.get(job.id)
    assert (ended.exit_code, ended.reason) == (3, TerminationReason.EXITED)
    assert [u.status for u in ended.updates] == [Status.QUEUED, Status.QUEUED,
                                                 Status.RUNNING, Status.FAILED]  # fmt: skip


async def test_stopping_a_job_in_the_backend_queue_cancels_it_there(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(backend="batch"))
    stopped = await rig.engine.stop(ALICE, job.id)
    assert (stopped.status, stopped.reason) == (Status.STOPPED, TerminationReason.USER_STOP)
    assert stopped.started_at is None
    assert job.id in rig.batch.cleaned  # the backend was told, and released it


async def test_a_job_that_fails_in_the_backend_queue_never_ran(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(backend="batch"))
    rig.batch.finish(job.id, ExitInfo(exit_code=None, lost=True, message="node failure"))
    await rig.status(job.id, Status.FAILED)
    ended = rig.store.get(job.id)
    assert (ended.reason, ended.message, ended.started_at) == (
        TerminationReason.LOST,
        "node failure",
        None,
    )


async def test_a_full_backend_does_not_hold_up_another(tmp_path: Path) -> None:
    async with rig_for(tmp_path, local_jobs=1) as rig:
        first = await rig.engine.submit(ALICE, spec())
        waiting = await rig.engine.submit(ALICE, spec())
        batch = await rig.engine.submit(ALICE, spec(backend="batch"))
        assert waiting.status is Status.QUEUED and not waiting.backend_id
        assert batch.id in rig.batch.started  # handed over past the waiting local job
        rig.local.finish(first.id, ExitInfo(exit_code=0))
        await rig.status(waiting.id, Status.RUNNING)


async def test_a_job_in_the_backend_queue_is_adopted_after_a_restart(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(backend="batch"))
    await rig.engine.close()
    rig.batch.started.clear()
    engine = rig.new_engine()
    await engine.start()
    try:
        assert job.id not in rig.batch.started  # watched again, not handed over twice
        assert rig.store.get(job.id).status is Status.QUEUED
        rig.batch.begin(job.id)
        await rig.status(job.id, Status.RUNNING)
        rig.batch.finish(job.id, ExitInfo(exit_code=0))
        await rig.status(job.id, Status.COMPLETED)
    finally:
        await engine.close()


def test_a_registry_refuses_a_default_it_lacks() -> None:
    with pytest.raises(InvalidArgument, match="default backend 'slurm' is not one of local"):
        Backends([FakeRuntime(name="local")], "slurm")


async def test_extend_moves_the_backends_own_limit_first(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(backend="batch", time_limit_seconds=60))
    rig.batch.begin(job.id)
    await rig.status(job.id, Status.RUNNING)
    extended = await rig.engine.extend(ALICE, job.id, 30)
    assert extended.spec.time_limit_seconds == 90
    assert rig.batch.extended == {job.id: 90}


@pytest.mark.parametrize(
    "attach", [{"volumes": ("data",)}, {"runtime_env": "py"}, {"network": "isolated"}]
)
async def test_only_the_local_backend_attaches_volumes_runtimes_and_networks(
    rig: Rig, attach: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgument, match="backend batch cannot attach volumes, runtimes"):
        await rig.engine.submit(ALICE, dataclasses.replace(spec(backend="batch"), **attach))
    assert rig.store.list() == []


async def test_an_end_whose_start_was_never_seen_records_both(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec(backend="batch"))
    rig.batch.finish(job.id, ExitInfo(exit_code=0))  # ran too briefly for its start to show
    await rig.status(job.id, Status.COMPLETED)
    ended = rig.store.get(job.id)
    assert [u.status for u in ended.updates][-2:] == [Status.RUNNING, Status.COMPLETED]
    assert ended.started_at == ended.ended_at
