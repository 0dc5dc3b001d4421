"""jobyard.v1 RPCs: control — a job's details (usage, history), suspend and resume."""

from __future__ import annotations

from typing import Any

from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.engine import JobEngine
from jobyard.engine.control import JobDetails
from jobyard.server.auth import current_identity
from jobyard.server.convert import details_to_proto


class ControlRpcs:
    _engine: JobEngine

    async def GetJob(self, request: v1.JobRef, context: Any) -> v1.JobDetails:
        return _details(await self._engine.details(current_identity(), request.id))

    async def SuspendJob(self, request: v1.JobRef, context: Any) -> v1.JobDetails:
        job = await self._engine.suspend(current_identity(), request.id)
        return _details(await self._engine.details_of(job))

    async def ResumeJob(self, request: v1.JobRef, context: Any) -> v1.JobDetails:
        job = await self._engine.resume(current_identity(), request.id)
        return _details(await self._engine.details_of(job))


def _details(details: JobDetails) -> v1.JobDetails:
    return details_to_proto(details.job, usage=details.usage, output_bytes=details.output_bytes)
