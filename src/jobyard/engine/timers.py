"""JobTimers: one-shot wake-ups per job (scheduled starts, time limits) on the event loop.

No polling: each timer is a ``loop.call_later`` handle whose callback starts the action as a
task. Times are wall-clock (they come from the store and survive a restart: the engine
re-arms them on start), while the loop sleeps on a monotonic clock; so a timer never sleeps
longer than :data:`MAX_SLEEP_SECONDS` at once and, when it wakes before its wall-clock time
(a long sleep, the wall clock moved, or the loop's clock ran ahead of it), sleeps again for the
rest: a timer never acts early, so what it causes is recorded at or after its time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from jobyard.domain.jobs import utcnow

log = logging.getLogger("jobyard.engine.timers")

MAX_SLEEP_SECONDS = 3600.0

Action = Callable[[str], Awaitable[None]]


class JobTimers:
    """At most one timer per (job, kind); arming again replaces it."""

    def __init__(self) -> None:
        self._handles: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, job_id: str, kind: str, when: datetime, action: Action) -> None:
        """Run ``action(job_id)`` at ``when`` (at once if it has passed)."""
        self.cancel(job_id, kind)
        delay = min(max(0.0, (when - utcnow()).total_seconds()), MAX_SLEEP_SECONDS)
        loop = asyncio.get_running_loop()
        self._handles[(job_id, kind)] = loop.call_later(
            delay, self._fire, job_id, kind, when, action
        )

    def cancel(self, job_id: str, kind: str | None = None) -> None:
        """Cancel the job's timer of ``kind`` (every timer of the job when None)."""
        for key in [k for k in self._handles if k[0] == job_id and kind in (None, k[1])]:
            self._handles.pop(key).cancel()

    def armed(self, job_id: str) -> set[str]:
        """The kinds of timer pending for the job."""
        return {kind for jid, kind in self._handles if jid == job_id}

    async def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _fire(self, job_id: str, kind: str, when: datetime, action: Action) -> None:
        self._handles.pop((job_id, kind), None)
        if utcnow() < when:
            # Early, even by microseconds: an expiry recorded before ``expires_at`` (or a
            # start before the schedule) would contradict the times the API shows.
            self.arm(job_id, kind, when, action)
            return
        task = asyncio.create_task(self._run(job_id, kind, action), name=f"{kind}-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(job_id: str, kind: str, action: Action) -> None:
        try:
            await action(job_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("timer action failed | jobId=%s timer=%s", job_id, kind)


__all__ = ["JobTimers"]
