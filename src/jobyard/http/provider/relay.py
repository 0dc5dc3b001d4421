"""CoreRelay: every state change of a job Core created reaches Core, in order, exactly as
its history says, whatever goes down in between.

Two tasks. The *recorder* watches the engine's job events (no polling): for a job Core
created it queues, in one SQLite transaction, the Core updates its history holds that are
not queued yet (:mod:`jobyard.http.provider.updates`, :class:`~jobyard.store.provider.
SQLiteProviderStore`). The *sender* posts the outbox, oldest first, as bulk
``jobs.control.update`` calls and deletes what Core acknowledged; a call that fails is
retried, the same batch again, with exponential backoff. So:

- a Core outage: updates wait in the outbox, then go in the order they were queued;
- a kill -9: what was queued is on disk; what was not is recomputed at start from the
  jobs' durable histories (every job whose end is not queued yet is looked at again);
- both: the two combined. Core may get an update twice (sent, then jobyard died before it
  recorded the acknowledgement): delivery is at least once, never out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from jobyard.domain.access import SYSTEM
from jobyard.domain.errors import NotFound
from jobyard.domain.jobs import RANK_JOB_ID_LABEL, Job
from jobyard.engine import JobEngine
from jobyard.engine.events import WatcherTooSlow
from jobyard.http.provider.updates import (
    NO_LONGER_AVAILABLE,
    core_updates,
    final_update,
    job_update,
)
from jobyard.store.provider import SQLiteProviderStore
from jobyard.ucloud.core import MAX_ITEMS_PER_CALL, CoreClient, CoreUnavailable

log = logging.getLogger("jobyard.provider")


@dataclasses.dataclass(frozen=True, slots=True)
class RelayConfig:
    first_retry_seconds: float = 0.1
    max_retry_seconds: float = 5.0  # Core down for long: one small call this often


def created_by_core(job: Job) -> bool:
    return RANK_JOB_ID_LABEL in job.spec.labels


class CoreRelay:
    def __init__(
        self,
        engine: JobEngine,
        store: SQLiteProviderStore,
        client: CoreClient,
        config: RelayConfig | None = None,
    ) -> None:
        self._engine = engine
        self._store = store
        self._client = client
        self._config = config or RelayConfig()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.delivered = 0  # updates Core acknowledged (for logs and tests)

    @property
    def engine(self) -> JobEngine:
        return self._engine

    async def start(self) -> None:
        """Watch the engine, catch up on what a previous run left, and start sending."""
        subscribed = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._record(subscribed), name="core-recorder"))
        await subscribed.wait()
        self._tasks.append(asyncio.create_task(self._send(), name="core-sender"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._client.close()

    # -- queuing -----------------------------------------------------------------------

    def record(self, job: Job) -> None:
        """Queue what of ``job``'s history Core has not been queued yet."""
        found = self._store.by_job_id(job.id)
        if found is None or found.final:
            return
        if self._store.post(found.core_id, core_updates(job), final=job.status.terminal):
            self._wake.set()

    def verify(self, core_id: str) -> None:
        """Core asked about ``core_id``: unknown (or deleted) -> FAILURE "Your job is no
        longer available"; finished -> its final update again; active -> nothing."""
        found = self._store.by_core_id(core_id)
        job = None
        if found is not None:
            with contextlib.suppress(NotFound):
                job = self._engine.job(SYSTEM, found.job_id)
        if job is None:
            update = job_update("FAILURE", NO_LONGER_AVAILABLE)
        else:
            self.record(job)
            final = final_update(job)
            if final is None:
                return
            update = final
        self._store.post_extra(core_id, update)
        self._wake.set()

    def catch_up(self) -> None:
        """Queue what the histories of every job not yet ended at Core hold."""
        for found in self._store.open_jobs():
            try:
                self.record(self._engine.job(SYSTEM, found.job_id))
            except NotFound:  # deleted: Core hears so when it verifies the job
                continue

    async def _record(self, subscribed: asyncio.Event) -> None:
        while True:
            try:
                async with self._engine.events.subscribe(accept=created_by_core) as changes:
                    self.catch_up()  # after subscribing: no change falls in between
                    subscribed.set()
                    async for job in changes:
                        self.record(job)
            except WatcherTooSlow:
                log.warning("core relay fell behind the engine's events: catching up")
            except Exception:
                # E.g. the database refused a write (disk full): what was not queued is
                # still in the jobs' histories, and the next catch-up queues it.
                subscribed.set()
                log.exception("core relay could not queue updates | retryInSeconds=%g",
                              self._config.max_retry_seconds)  # fmt: skip
                await asyncio.sleep(self._config.max_retry_seconds)

    # -- sending -------------------------------------------------------------------------

    async def _send(self) -> None:
        delay = self._config.first_retry_seconds
        while True:
            batch = self._store.pending(MAX_ITEMS_PER_CALL)
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._client.update([{"id": i.core_id, "update": i.update} for i in batch])
                self._store.acknowledged(batch[-1].seq)
            except Exception as exc:  # Core down or refusing; or a local error: never give up
                if isinstance(exc, CoreUnavailable):
                    log.warning("core update failed | pending=%d why=%s retryInSeconds=%g",
                                len(batch), exc, delay)  # fmt: skip
                else:
                    log.exception("core update failed | pending=%d", len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.max_retry_seconds)
                continue
            self.delivered += len(batch)
            delay = self._config.first_retry_seconds
            for item in batch:
                log.info("core updated | coreJobId=%s state=%s",
                         item.core_id, item.update.get("state"))  # fmt: skip


__all__ = ["CoreRelay", "RelayConfig", "created_by_core"]
