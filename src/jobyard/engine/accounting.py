"""Charger: charges running jobs for their product, per started unit, in advance.

A job on a priced product pays, for each *started* unit of running time (a minute, an hour
or a day, the product's ``unitOfPrice``), ``pricePerUnit`` credits times its replicas, at
the start of that unit: unit 0 as it starts running, unit 1 when it has run one unit, and
so on (running 61 s at CREDITS_PER_MINUTE pays 2 units). Running time excludes suspended
time, so a suspended job pays nothing more. ``freeToUse`` products and jobs without a
product are never charged.

Event driven: the engine reports every change of a job (:meth:`Charger.observe`); a RUNNING
job gets one timer, at its next unit boundary, and no other job is looked at. What is paid
lives only in the ledger (:meth:`Ledger.charged_units`), so a restarted server re-arms
each running job from there and charges, once, the units that started while it was down;
each unit is one charge, identified by the job and the unit, so doing it again is a
duplicate.

A job whose next unit cannot be paid is stopped at once (reason NO_CREDITS).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from jobyard.accounting.ledger import Charge, ChargeOutcome, Ledger, Pricing
from jobyard.domain.errors import InvalidArgument, NotFound, PaymentRequired
from jobyard.domain.jobs import Job, JobSpec, ProductRef, utcnow
from jobyard.domain.status import Status

log = logging.getLogger("jobyard.engine.accounting")

NO_CREDITS_MESSAGE = "The job was terminated (No credits)"
MAX_SLEEP_SECONDS = 3600.0  # wall time is re-read at least this often
MAX_UNITS_PER_CALL = 1000  # a long catch-up goes in several calls, the loop free between them
RETRY_SECONDS = 5.0  # after a ledger error, the job's charge is tried again this much later

PriceList = Callable[[ProductRef], Pricing | None]
# Which ledger charges a job (None: the default one); e.g. UCloud/Core's for jobs Core created.
LedgerChoice = Callable[[JobSpec], Ledger | None]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Wall time and wake-ups; the system's, or a test's that it moves by hand."""

    def now(self) -> datetime: ...

    def call_at(self, when: datetime, callback: Callable[[], None]) -> Timer: ...


class SystemClock:
    """The real clock on the running event loop. A wake-up may come early (long sleeps are
    cut at :data:`MAX_SLEEP_SECONDS`; the wall clock may move): the charger re-checks what
    is due, so an early wake-up only re-arms."""

    def now(self) -> datetime:
        return utcnow()

    def call_at(self, when: datetime, callback: Callable[[], None]) -> Timer:
        delay = min(max(0.0, (when - utcnow()).total_seconds()), MAX_SLEEP_SECONDS)
        return asyncio.get_running_loop().call_later(delay, callback)


@dataclasses.dataclass(frozen=True, slots=True)
class Accounting:
    """What the engine needs to charge jobs: the ledger, the price of each product, the
    clock (the system's by default) and the charge rate (see :class:`Charger`)."""

    ledger: Ledger
    prices: PriceList
    clock: Clock | None = None
    rate: float = 1.0
    interval_seconds: float | None = None  # see Charger
    ledger_for: LedgerChoice | None = None  # another ledger for some jobs (see Charger)


class Charger:
    """Charges jobs to ``ledger`` at the prices of ``prices``.

    ``job`` reads a job's current record, ``stop`` stops one for lack of credits. ``rate``
    is how many seconds of running time are charged per second of wall time: 1, except in
    tests that want a minute to pass quickly. With ``interval_seconds`` (UCloud/Core's
    ``accountingIntervalSeconds``) a job is charged at most that often, each time for every
    unit started since (one charge per unit, in one call), instead of at each unit's start.
    ``ledger_for`` picks another ledger than ``ledger`` for some jobs (by their spec).
    """

    def __init__(
        self,
        ledger: Ledger,
        prices: PriceList,
        *,
        job: Callable[[str], Job],
        stop: Callable[[str], Awaitable[None]],
        clock: Clock | None = None,
        rate: float = 1.0,
        interval_seconds: float | None = None,
        ledger_for: LedgerChoice | None = None,
    ) -> None:
        if not rate > 0 or (interval_seconds is not None and not interval_seconds > 0):
            raise ValueError("rate and interval must be positive")
        self._interval = interval_seconds
        self._ledger = ledger
        self._ledger_for = ledger_for
        self._prices = prices
        self._job = job
        self._stop = stop
        self._clock = clock or SystemClock()
        self._rate = rate
        self._timers: dict[str, Timer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the engine calls -----------------------------------------------------------

    async def admit(self, owner: str, project: str, spec: JobSpec) -> None:
        """Refuse (PaymentRequired) a job whose wallet cannot pay its first unit."""
        pricing = self._pricing_of(spec)
        if pricing is None or pricing.free:
            return
        cost = pricing.cost(1, spec.replicas)
        if not await self._ledger_of(spec).can_pay(owner, project, cost):
            wallet = f"{owner} (project {project})" if project else owner
            replicas = f"{spec.replicas} replica{'s' if spec.replicas != 1 else ''}"
            raise PaymentRequired(
                f"insufficient credits: the first {pricing.unit_name} of {pricing.product} "
                f"for {replicas} costs {cost} credits, more than the wallet of {wallet} holds"
            )

    def observe(self, job: Job) -> None:
        """A job changed: a RUNNING job is settled and timed, any other is left alone."""
        if job.status is not Status.RUNNING:
            self._cancel(job.id)
            if job.status.terminal:
                self._locks.pop(job.id, None)
            return
        if job.spec.product is not None:
            self._spawn(job.id)

    @property
    def timed(self) -> set[str]:
        """Ids of the jobs with a pending charge timer."""
        return set(self._timers)

    async def settle(self, job_id: str) -> None:
        """Charge what is due for the job now and time its next unit."""
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            await self._settle(job_id)

    async def settled(self) -> None:
        """Return once no charge is in progress (what is due now has been charged)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- charging ---------------------------------------------------------------------------

    def _ledger_of(self, spec: JobSpec) -> Ledger:
        chosen = None if self._ledger_for is None else self._ledger_for(spec)
        return self._ledger if chosen is None else chosen

    def _pricing_of(self, spec: JobSpec) -> Pricing | None:
        if spec.product is None:
            return None
        pricing = self._prices(spec.product)
        if pricing is None:
            raise InvalidArgument(f"unknown product {spec.product}")
        return None if pricing.free else pricing

    async def _settle(self, job_id: str) -> None:
        try:
            job = self._job(job_id)
            pricing = self._pricing_of(job.spec)
        except (NotFound, InvalidArgument) as exc:
            log.warning("job not charged | jobId=%s why=%s", job_id, exc)
            return
        if job.status is not Status.RUNNING or pricing is None:
            return
        now = self._clock.now()
        running = self.running_seconds(job, now)
        due = int(running // pricing.unit_seconds) + 1  # units started so far
        paid = await self._ledger_of(job.spec).charged_units(job.id)
        upto = min(due, paid + MAX_UNITS_PER_CALL)
        if upto > paid and not await self._charge(job, pricing, range(paid, upto)):
            return
        wait = (due * pricing.unit_seconds - running) / self._rate
        if self._interval is not None:
            wait = max(wait, self._interval)
        if upto < due:
            wait = 0.0  # more of a catch-up to charge: at once, after whatever else is due
        self._arm(job.id, now + timedelta(seconds=wait))

    async def _charge(self, job: Job, pricing: Pricing, units: range) -> bool:
        """Charge ``units``, one charge each, in order (so the ids never depend on how
        units were grouped, and a wallet pays every unit it can); False when the job was
        stopped for lack of credits."""
        periods = job.spec.replicas
        charges = [
            Charge(job_id=job.id, owner=job.owner, project=job.project, first_unit=n,
                   last_unit=n, periods=periods, credits=pricing.cost(1, periods),
                   product=pricing.product)
            for n in units
        ]  # fmt: skip
        outcomes = await self._ledger_of(job.spec).charge(charges)
        for charge, outcome in zip(charges, outcomes, strict=True):
            if outcome is ChargeOutcome.INSUFFICIENT_FUNDS:
                log.info("job out of credits | jobId=%s chargeId=%s credits=%d",
                         job.id, charge.charge_id, charge.credits)  # fmt: skip
                self._cancel(job.id)
                await self._stop(job.id)
                return False
            log.info("job charged | jobId=%s chargeId=%s periods=%d credits=%d outcome=%s",
                     job.id, charge.charge_id, periods, charge.credits, outcome)  # fmt: skip
        return True

    def running_seconds(self, job: Job, now: datetime) -> float:
        """Charged running time: wall time since the start less suspended time, x rate."""
        if job.started_at is None:
            return 0.0
        wall = (now - job.started_at).total_seconds() - job.suspended_seconds_at(now)
        return max(0.0, wall) * self._rate

    # -- timers -------------------------------------------------------------------------------

    def _arm(self, job_id: str, when: datetime) -> None:
        self._cancel(job_id)
        self._timers[job_id] = self._clock.call_at(when, lambda: self._fire(job_id))

    def _fire(self, job_id: str) -> None:
        self._timers.pop(job_id, None)
        self._spawn(job_id)

    def _cancel(self, job_id: str) -> None:
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()

    def _spawn(self, job_id: str) -> None:
        task = asyncio.create_task(self._settle_logged(job_id), name=f"charge-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_logged(self, job_id: str) -> None:
        try:
            await self.settle(job_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A ledger that failed (a remote one may be down): the same units are tried
            # again, under the same charge id, so a charge that did go through is not
            # taken twice. TODO: back off exponentially for a ledger that stays down.
            log.exception("charging failed | jobId=%s retryInSeconds=%g", job_id, RETRY_SECONDS)
            self._arm(job_id, self._clock.now() + timedelta(seconds=RETRY_SECONDS))


__all__ = [
    "NO_CREDITS_MESSAGE",
    "Accounting",
    "Charger",
    "Clock",
    "LedgerChoice",
    "PriceList",
    "SystemClock",
]
