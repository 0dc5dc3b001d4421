"""FakeRuntime: an in-process Runtime for unit tests of the engine. No processes."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime

from jobyard.domain.errors import LaunchError
from jobyard.domain.jobs import utcnow
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest, Usage
from jobyard.runtime.capacity import Capacity


class FakeRuntime:
    """Jobs "run" until the test calls :meth:`finish` (or :meth:`stop` ends them).

    With ``queues`` it acts as a batch system: a started job waits in its queue until the
    test calls :meth:`begin`.
    """

    def __init__(
        self, *, name: str = "fake", queues: bool = False, capacity: Capacity | None = None
    ) -> None:
        self.name = name
        self.queues = queues
        self.capacity = capacity or Capacity(cpus=2, memory_mb=2048)
        self._begun: dict[str, asyncio.Future[datetime | None]] = {}
        self.started: dict[str, LaunchRequest] = {}
        self.suspended: set[str] = set()
        self.cleaned: set[str] = set()
        self.extended: dict[str, float] = {}  # job id -> the time limit it was given
        self.fail_launch: str | None = None  # message for the next start to fail with
        self.ignore_stop = False
        self._exits: dict[str, asyncio.Future[ExitInfo]] = {}

    def _future(self, job_id: str) -> asyncio.Future[ExitInfo]:
        if job_id not in self._exits:
            self._exits[job_id] = asyncio.get_running_loop().create_future()
        return self._exits[job_id]

    async def start(self, request: LaunchRequest) -> Handle:
        if self.fail_launch is not None:
            message, self.fail_launch = self.fail_launch, None
            raise LaunchError(message)
        self.started[request.job_id] = request
        self._future(request.job_id)
        return Handle(backend_id=f"fake-{request.job_id}")

    def _begin_future(self, job_id: str) -> asyncio.Future[datetime | None]:
        if job_id not in self._begun:
            self._begun[job_id] = asyncio.get_running_loop().create_future()
            if not self.queues:
                self._begun[job_id].set_result(utcnow())
        return self._begun[job_id]

    def begin(self, job_id: str) -> None:
        """A queued job starts running."""
        future = self._begin_future(job_id)
        if not future.done():
            future.set_result(utcnow())

    async def running(self, job_id: str, handle: Handle) -> datetime | None:
        return await asyncio.shield(self._begin_future(job_id))

    def finish(self, job_id: str, info: ExitInfo) -> None:
        future = self._future(job_id)
        if not future.done():
            future.set_result(info)
        begun = self._begin_future(job_id)
        if not begun.done():
            begun.set_result(None)  # ended before it ever ran

    async def wait(self, job_id: str, handle: Handle) -> ExitInfo:
        return await asyncio.shield(self._future(job_id))

    async def stop(self, job_id: str, handle: Handle, grace_seconds: float) -> None:
        if not self.ignore_stop:
            self.finish(job_id, ExitInfo(exit_code=128 + signal.SIGKILL, signal=signal.SIGKILL))

    async def suspend(self, job_id: str, handle: Handle) -> None:
        self.suspended.add(job_id)

    async def resume(self, job_id: str, handle: Handle) -> None:
        self.suspended.discard(job_id)

    async def close(self) -> None:
        pass

    async def extend(self, job_id: str, handle: Handle, time_limit_seconds: float) -> None:
        self.extended[job_id] = time_limit_seconds

    async def usage(self, job_id: str, handle: Handle) -> Usage:
        return Usage()

    async def cleanup(self, job_id: str, handle: Handle) -> None:
        self.cleaned.add(job_id)
