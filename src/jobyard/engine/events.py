"""JobEvents: every job change, fanned out to watchers, each with its own bounded queue.

A watcher that does not keep up is dropped (its queue is full) rather than slowing the
engine or other watchers; it reconnects and gets a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection

from jobyard.domain.jobs import Job

log = logging.getLogger(__name__)

WATCH_QUEUE_EVENTS = 10_000


class WatcherTooSlow(Exception):
    """The watcher's queue overflowed; it must reconnect."""


class _Watcher:
    __slots__ = ("accept", "ids", "overflowed", "queue")

    def __init__(self, ids: Collection[str], accept: Callable[[Job], bool] | None) -> None:
        self.ids = frozenset(ids)
        self.accept = accept
        self.queue: asyncio.Queue[Job] = asyncio.Queue(WATCH_QUEUE_EVENTS)
        self.overflowed = False


class JobEvents:
    def __init__(self) -> None:
        self._watchers: set[_Watcher] = set()
        self._observers: list[Callable[[Job], None]] = []

    def observe(self, observer: Callable[[Job], None]) -> None:
        """Call ``observer(job)`` synchronously on every change (metrics): it must be quick,
        and what it raises is logged, never passed on to the engine."""
        self._observers.append(observer)

    def publish(self, job: Job) -> None:
        for observer in self._observers:
            try:
                observer(job)
            except Exception:
                log.exception("job observer failed | jobId=%s", job.id)
        for watcher in self._watchers:
            if watcher.ids and job.id not in watcher.ids:
                continue
            if watcher.accept is not None and not watcher.accept(job):
                continue  # e.g. another owner's job: never queued, never counted
            try:
                watcher.queue.put_nowait(job)
            except asyncio.QueueFull:
                watcher.overflowed = True

    @contextlib.asynccontextmanager
    async def subscribe(
        self, ids: Collection[str] = (), accept: Callable[[Job], bool] | None = None
    ) -> AsyncIterator[AsyncIterator[Job]]:
        """Subscribe before taking a snapshot, so no change falls between the two.

        Only changes of ``ids`` (all when empty) that ``accept`` admits (all when None)
        are delivered.
        """
        watcher = _Watcher(ids, accept)
        self._watchers.add(watcher)
        try:
            yield self._drain(watcher)
        finally:
            self._watchers.discard(watcher)

    @staticmethod
    async def _drain(watcher: _Watcher) -> AsyncIterator[Job]:
        while True:
            if watcher.overflowed and watcher.queue.empty():
                raise WatcherTooSlow("watcher fell too far behind; reconnect for a snapshot")
            yield await watcher.queue.get()
