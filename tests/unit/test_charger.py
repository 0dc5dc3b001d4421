"""Charger with a clock moved by hand: per started unit, in advance, replicas, suspension,
restarts, no credits. The ledger is the in-memory fake; the engine tests use the fake runtime."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from jobyard.accounting.ledger import Charge, ChargeOutcome, Pricing
from jobyard.accounting.memory import MemoryLedger
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import PaymentRequired
from jobyard.domain.jobs import Job, JobSpec, ProductRef, utcnow
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine import EngineConfig, JobEngine
from jobyard.engine.accounting import NO_CREDITS_MESSAGE, Accounting, Charger
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime.fake import FakeRuntime
from jobyard.store import MemoryStore

PRODUCT = ProductRef("example-compute-1", "example-compute", "example")
FREE = ProductRef("free-1", "example-compute", "example")
PER_MINUTE = Pricing("example-compute-1 (example-compute)", 1000, 60.0)
PRICES = {PRODUCT: PER_MINUTE, FREE: dataclasses.replace(PER_MINUTE, free=True)}
ALICE = Identity("alice", Role.USER)
MAX_WAKE_UPS = 1000
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=utcnow().tzinfo)


class ManualClock:
    """Wall time that moves only when told; due wake-ups run in time order."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._pending: list[tuple[datetime, int, Callable[[], None], list[bool]]] = []
        self._seq = 0

    def now(self) -> datetime:
        return self._now

    def call_at(self, when: datetime, callback: Callable[[], None]) -> _Handle:
        cancelled = [False]
        self._seq += 1
        self._pending.append((when, self._seq, callback, cancelled))
        return _Handle(cancelled)

    @property
    def armed(self) -> list[datetime]:
        return sorted(when for when, _, _, cancelled in self._pending if not cancelled[0])

    async def advance(self, seconds: float, charger: Charger) -> None:
        """Move time on, running every wake-up that falls due on the way (and what it
        starts) at its own time."""
        end = self._now + timedelta(seconds=seconds)
        for _ in range(MAX_WAKE_UPS):
            await charger.settled()
            due = sorted(p for p in self._pending if p[0] <= end and not p[3][0])
            if not due:
                break
            when, seq, callback, _ = due[0]
            self._pending = [p for p in self._pending if p[1] != seq]
            self._now = max(self._now, when)
            callback()
        else:
            pytest.fail(f"more than {MAX_WAKE_UPS} wake-ups in {seconds} s: a timer loop")
        self._now = end


@dataclasses.dataclass
class _Handle:
    cancelled: list[bool]

    def cancel(self) -> None:
        self.cancelled[0] = True


# -- the charger alone, over jobs it reads from a dict ------------------------------------


@dataclasses.dataclass
class Desk:
    clock: ManualClock
    ledger: MemoryLedger
    jobs: dict[str, Job]
    stopped: list[str]
    charger: Charger

    def put(self, job: Job) -> Job:
        self.jobs[job.id] = job
        self.charger.observe(job)
        return job

    def balance(self, owner: str = "alice", project: str = "") -> int:
        return self.ledger.wallet(owner, project).balance


def desk(ledger: MemoryLedger | None = None, clock: ManualClock | None = None) -> Desk:
    jobs: dict[str, Job] = {}
    stopped: list[str] = []
    ledger = ledger or MemoryLedger()
    clock = clock or ManualClock(T0)

    async def stop(job_id: str) -> None:
        stopped.append(job_id)
        jobs[job_id] = dataclasses.replace(jobs[job_id], status=Status.STOPPING)

    charger = Charger(ledger, PRICES.get, job=jobs.__getitem__, stop=stop, clock=clock)
    return Desk(clock, ledger, jobs, stopped, charger)


def running(job_id: str = "job-1", *, replicas: int = 1, product: ProductRef = PRODUCT,
            owner: str = "alice", project: str = "", **fields: object) -> Job:  # fmt: skip
    spec = JobSpec(command="sleep", replicas=replicas, product=product)
    values: dict[str, object] = dict(
        id=job_id, owner=owner, project=project, spec=spec, status=Status.RUNNING,
        created_at=T0, started_at=T0,
    )  # fmt: skip
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


async def test_the_first_unit_is_paid_as_the_job_starts_and_61_seconds_cost_two() -> None:
    d = desk()
    d.ledger.deposit("alice", "", 10_000)
    d.put(running())
    await d.clock.advance(0, d.charger)
    assert (d.balance(), d.clock.armed) == (9_000, [T0 + timedelta(seconds=60)])
    await d.clock.advance(59.9, d.charger)
    assert d.balance() == 9_000
    await d.clock.advance(1.1, d.charger)  # 61 s: the second minute has started
    assert d.balance() == 8_000
    assert [r.charge.charge_id for r in d.ledger.charges("job-1")] == [
        "job-1-units-0-0", "job-1-units-1-1",
    ]  # fmt: skip
    assert d.clock.armed == [T0 + timedelta(seconds=120)]  # one timer: the next boundary


async def test_replicas_multiply_the_price_and_are_the_periods() -> None:
    d = desk()
    d.ledger.deposit("alice", "", 10_000)
    d.put(running(replicas=3))
    await d.clock.advance(61, d.charger)
    assert d.balance() == 10_000 - 2 * 3 * 1000
    charges = [r.charge for r in d.ledger.charges("job-1")]
    assert [(c.units, c.periods, c.credits) for c in charges] == [(1, 3, 3000), (1, 3, 3000)]


async def test_suspended_time_is_free() -> None:
    d = desk()
    d.ledger.deposit("alice", "", 10_000)
    job = d.put(running())
    await d.clock.advance(30, d.charger)
    # Suspended at 30 s for 10 minutes: no timer while it is frozen, no charge.
    d.put(
        dataclasses.replace(job, status=Status.SUSPENDED, suspended_at=T0 + timedelta(seconds=30))
    )
    assert d.clock.armed == []
    await d.clock.advance(600, d.charger)
    assert d.balance() == 9_000
    resumed = dataclasses.replace(job, suspended_seconds=600.0, suspended_at=None)
    d.put(resumed)
    await d.clock.advance(29, d.charger)  # 59 s of running time
    assert d.balance() == 9_000
    await d.clock.advance(2, d.charger)  # 61 s of running time
    assert d.balance() == 8_000


async def test_free_and_unpriced_jobs_are_never_charged() -> None:
    d = desk()
    d.put(running("free", product=FREE))
    d.put(dataclasses.replace(running("plain"), spec=JobSpec(command="sleep")))
    await d.clock.advance(3600, d.charger)
    assert d.ledger.calls == [] and d.clock.armed == [] and d.stopped == []


async def test_a_unit_that_cannot_be_paid_stops_the_job_at_once() -> None:
    d = desk()
    d.ledger.deposit("alice", "", 1_500)  # one minute and a half
    d.put(running())
    await d.clock.advance(59, d.charger)
    assert d.stopped == []
    await d.clock.advance(1, d.charger)
    assert d.stopped == ["job-1"]
    assert d.balance() == 500  # nothing taken for the unit it could not pay
    assert d.clock.armed == []


async def test_a_restart_charges_missed_units_once_and_rearms_from_the_ledger() -> None:
    ledger, clock = MemoryLedger(), ManualClock(T0)
    ledger.deposit("alice", "", 10_000)
    first = desk(ledger, clock)
    first.put(running())
    await clock.advance(61, first.charger)
    await first.charger.close()  # the server goes away with the job running
    assert first.balance() == 8_000
    await clock.advance(180, first.charger)  # 4 min 1 s: units 2, 3 and 4 have started
    second = desk(ledger, clock)
    second.put(running())
    await second.charger.settled()
    assert second.balance() == 5_000
    assert [r.charge.charge_id for r in ledger.charges("job-1")][2:] == [
        "job-1-units-2-2", "job-1-units-3-3", "job-1-units-4-4",
    ]  # fmt: skip
    assert clock.armed[-1] == T0 + timedelta(seconds=300)


async def test_a_catch_up_pays_every_unit_it_can_then_stops_the_job() -> None:
    ledger, clock = MemoryLedger(), ManualClock(T0)
    ledger.deposit("alice", "", 3_000)
    first = desk(ledger, clock)
    first.put(running())
    await clock.advance(61, first.charger)
    await first.charger.close()
    await clock.advance(180, first.charger)  # units 2, 3 and 4 started while down
    second = desk(ledger, clock)
    second.put(running())
    await second.charger.settled()
    assert [r.charge.last_unit for r in ledger.charges("job-1")] == [0, 1, 2]
    assert (second.balance(), second.stopped) == (0, ["job-1"])


async def test_a_charge_applied_before_a_crash_is_not_taken_again() -> None:
    """The ledger charged, the charger died before it knew: the same range is a duplicate."""
    ledger = MemoryLedger()
    ledger.deposit("alice", "", 10_000)
    charge = Charge("job-1", "alice", "", 0, 0, periods=1, credits=1000)
    assert await ledger.charge([charge]) == [ChargeOutcome.CHARGED]
    assert await ledger.charge([charge]) == [ChargeOutcome.DUPLICATE]
    d = desk(ledger)
    d.put(running())  # a new charger finds unit 0 paid
    await d.clock.advance(0, d.charger)
    assert d.balance() == 9_000
    assert len(ledger.charges("job-1")) == 1


async def test_admit_refuses_a_job_that_cannot_pay_its_first_unit() -> None:
    d = desk()
    d.ledger.deposit("alice", "team", 2_999)
    with pytest.raises(
        PaymentRequired,
        match=r"first minute of example-compute-1 .* for 3 "
        r"replicas costs 3000 credits, more than the wallet of alice \(project team\)",
    ):
        await d.charger.admit("alice", "team", JobSpec(command="x", replicas=3, product=PRODUCT))
    await d.charger.admit("alice", "team", JobSpec(command="x", replicas=2, product=PRODUCT))
    await d.charger.admit("bob", "", JobSpec(command="x", product=FREE))
    await d.charger.admit("bob", "", JobSpec(command="x"))


# -- in the engine, over the fake runtime ---------------------------------------------------


@contextlib.asynccontextmanager
async def engine_for(tmp_path: Path, ledger: MemoryLedger, clock: ManualClock,
                     runtime: FakeRuntime | None = None) -> AsyncIterator[JobEngine]:  # fmt: skip
    layout = JobLayout(tmp_path)
    layout.prepare()
    hub = LogHub(layout)
    hub.start()
    engine = JobEngine(
        MemoryStore(), runtime or FakeRuntime(), layout, hub,
        EngineConfig(),
        accounting=Accounting(ledger, PRICES.get, clock=clock),
    )  # fmt: skip
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()
        hub.close()


async def test_engine_refuses_the_create_and_keeps_no_job(tmp_path: Path) -> None:
    ledger = MemoryLedger()
    async with engine_for(tmp_path, ledger, ManualClock(utcnow())) as engine:
        with pytest.raises(PaymentRequired):
            await engine.submit(ALICE, JobSpec(command="sleep", product=PRODUCT))
        assert engine.jobs(ALICE) == []


async def test_engine_stops_a_job_out_of_credits_with_no_credits(tmp_path: Path) -> None:
    ledger, clock = MemoryLedger(), ManualClock(utcnow())
    ledger.deposit("alice", "", 1_000)  # exactly the first minute
    async with engine_for(tmp_path, ledger, clock) as engine:
        assert engine.charger is not None
        job = await engine.submit(ALICE, JobSpec(command="sleep", product=PRODUCT))
        await engine.charger.settled()
        assert ledger.wallet("alice").balance == 0
        assert engine.job(ALICE, job.id).status is Status.RUNNING
        await clock.advance(61, engine.charger)
        async with asyncio.timeout(2):  # the fake runtime ends a stopped job at once
            while not engine.job(ALICE, job.id).status.terminal:
                await asyncio.sleep(0.001)
        stopped = engine.job(ALICE, job.id)
        assert (stopped.status, stopped.reason) == (Status.STOPPED, TerminationReason.NO_CREDITS)
        messages = [u.message for u in stopped.updates]
        assert messages[-2:] == [NO_CREDITS_MESSAGE, NO_CREDITS_MESSAGE]
        assert engine.charger.timed == set()


async def test_engine_rearms_running_jobs_after_a_restart(tmp_path: Path) -> None:
    ledger, clock, runtime = MemoryLedger(), ManualClock(utcnow()), FakeRuntime()
    ledger.deposit("alice", "", 10_000)
    layout = JobLayout(tmp_path)
    layout.prepare()
    hub = LogHub(layout)
    hub.start()
    store = MemoryStore()

    def engine() -> JobEngine:
        return JobEngine(store, runtime, layout, hub, EngineConfig(),
                         accounting=Accounting(ledger, PRICES.get, clock=clock))  # fmt: skip

    first = engine()
    await first.start()
    job = await first.submit(ALICE, JobSpec(command="sleep", product=PRODUCT, replicas=2))
    assert first.charger is not None
    await first.charger.settled()
    await first.close()
    assert ledger.wallet("alice").balance == 8_000
    await clock.advance(90, first.charger)  # nothing is watching: no charge
    assert ledger.wallet("alice").balance == 8_000
    second = engine()
    await second.start()
    assert second.charger is not None
    await second.charger.settled()
    assert ledger.wallet("alice").balance == 6_000  # unit 1 (90 s), for both replicas
    assert second.charger.timed == {job.id}
    await second.close()
    hub.close()


async def test_with_an_accounting_interval_units_are_charged_in_batches() -> None:
    jobs: dict[str, Job] = {}
    ledger, clock = MemoryLedger(), ManualClock(T0)
    ledger.deposit("alice", "", 100_000)

    async def stop(job_id: str) -> None:
        raise AssertionError("not stopped")

    charger = Charger(ledger, PRICES.get, job=jobs.__getitem__, stop=stop, clock=clock,
                      interval_seconds=900)  # fmt: skip
    jobs["job-1"] = running(replicas=2)
    charger.observe(jobs["job-1"])
    await clock.advance(899, charger)
    assert [len(call) for call in ledger.calls] == [1]  # unit 0, as the job started
    await clock.advance(1, charger)  # 15 min: units 1..15 have started, in one call
    assert [len(call) for call in ledger.calls] == [1, 15]
    assert {(c.units, c.periods) for c in ledger.calls[1]} == {(1, 2)}
    assert ledger.wallet("alice").balance == 100_000 - 16 * 2 * 1000


async def test_a_long_catch_up_is_charged_in_bounded_calls() -> None:
    ledger, clock = MemoryLedger(), ManualClock(T0)
    ledger.deposit("alice", "", 10**9)
    d = desk(ledger, clock)
    job = running(started_at=T0 - timedelta(days=2))  # 2880 minutes ran while no server was up
    d.put(job)
    await clock.advance(0, d.charger)
    assert [len(call) for call in ledger.calls] == [1000, 1000, 881]
    assert await ledger.charged_units(job.id) == 2881
