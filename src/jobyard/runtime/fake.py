"""FakeRuntime: an in-process Runtime for unit tests of the engine. No processes."""

from __future__ import annotations

import asyncio
import signal

from jobyard.domain.errors import LaunchError
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest, Usage


class FakeRuntime:
    """Jobs "run" until the test calls :meth:`finish` (or :meth:`stop` ends them)."""

    name = "fake"

    def __init__(self) -> None:
        self.started: dict[str, LaunchRequest] = {}
        self.suspended: set[str] = set()
        self.cleaned: set[str] = set()
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

    def finish(self, job_id: str, info: ExitInfo) -> None:
        future = self._future(job_id)
        if not future.done():
            future.set_result(info)

    async def wait(self, job_id: str, handle: Handle) -> ExitInfo:
        return await asyncio.shield(self._future(job_id))

    async def stop(self, job_id: str, handle: Handle, grace_seconds: float) -> None:
        if not self.ignore_stop:
            self.finish(job_id, ExitInfo(exit_code=128 + signal.SIGKILL, signal=signal.SIGKILL))

    async def suspend(self, job_id: str, handle: Handle) -> None:
        self.suspended.add(job_id)

    async def resume(self, job_id: str, handle: Handle) -> None:
        self.suspended.discard(job_id)

    async def usage(self, job_id: str, handle: Handle) -> Usage:
        return Usage()

    async def cleanup(self, job_id: str, handle: Handle) -> None:
        self.cleaned.add(job_id)
