"""The seed's job RPCs, served under both joblet.JobletService and joblet.JobService."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.domain.jobs import rfc3339
from jobyard.engine import JobEngine
from jobyard.engine.workflows import WorkflowRunner
from jobyard.server.auth import current_identity
from jobyard.server.convert import (
    NO_EXIT_CODE,
    flat_fields,
    job_to_proto,
    request_key,
    spec_from_request,
    uploads_from_proto,
)
from jobyard.server.v1.logs import send_output
from jobyard.server.workflows import WorkflowRpcs


class JobletServicer(pb_grpc.JobletServiceServicer):
    """Translates requests to engine calls; authorization happens in the interceptor."""

    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine

    async def RunJob(self, request: pb.RunJobReq, context: Any) -> pb.RunJobRes:
        job = await self._engine.submit(
            current_identity(),
            spec_from_request(request),
            uploads=uploads_from_proto(request.uploads),
            request_key=request_key(context),
        )
        return pb.RunJobRes(**flat_fields(job))

    async def GetJobStatus(self, request: pb.GetJobStatusReq, context: Any) -> pb.GetJobStatusRes:
        job = self._engine.job(current_identity(), request.id)
        return pb.GetJobStatusRes(**flat_fields(job))

    async def StopJob(self, request: pb.StopJobReq, context: Any) -> pb.StopJobRes:
        job = await self._engine.stop(current_identity(), request.id)
        return pb.StopJobRes(
            id=job.id,
            status=job.status.value,
            endTime=rfc3339(job.ended_at),
            exitCode=NO_EXIT_CODE if job.exit_code is None else job.exit_code,
        )

    async def ListJobs(self, request: pb.EmptyRequest, context: Any) -> pb.Jobs:
        return pb.Jobs(jobs=[job_to_proto(j) for j in self._engine.jobs(current_identity())])

    async def GetJobLogs(
        self, request: pb.GetJobLogsReq, context: Any
    ) -> AsyncIterator[pb.DataChunk]:
        follow = request.follow if request.HasField("follow") else True
        chunks = self._engine.read_output(
            current_identity(), request.id, follow=follow, rank=request.rank
        )
        await send_output(context, self._engine.logs, chunks, _data_chunk, follow=follow)
        return
        yield  # the interceptor iterates handlers; this one writes through the context


def _data_chunk(offset: int, data: bytes) -> pb.DataChunk:
    return pb.DataChunk(payload=data)


class JobServicer(JobletServicer, WorkflowRpcs, pb_grpc.JobServiceServicer):
    """joblet.JobService: the same five job RPCs plus the seed's workflow RPCs."""

    def __init__(self, engine: JobEngine, workflows: WorkflowRunner) -> None:
        super().__init__(engine)
        self._workflows = workflows
