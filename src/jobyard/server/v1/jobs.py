"""jobyard.v1 RPCs: jobs — list (filtered, paged), delete, extend, watch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import Job
from jobyard.domain.status import Status
from jobyard.engine import JobEngine
from jobyard.engine.events import WatcherTooSlow
from jobyard.server.auth import current_identity
from jobyard.server.convert import details_to_proto, parse_time, spec_from_request
from jobyard.store.base import JobQuery

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class JobRpcs:
    _engine: JobEngine

    async def RunJob(self, request: pb.RunJobReq, context: Any) -> v1.JobDetails:
        caller = current_identity()
        spec = spec_from_request(request)
        job = await self._engine.submit(caller.name, spec, project=caller.project, caller=caller)
        return await self._details(job)

    async def ListJobs(self, request: v1.ListJobsRequest, context: Any) -> v1.ListJobsResponse:
        jobs, token = self._engine.query(query_from_request(request))
        details = [await self._details(job) for job in jobs]
        return v1.ListJobsResponse(jobs=details, nextPageToken=token)

    async def DeleteJob(self, request: v1.JobRef, context: Any) -> v1.JobRef:
        job = await self._engine.delete(request.id)
        return v1.JobRef(id=job.id)

    async def ExtendJob(self, request: v1.ExtendJobRequest, context: Any) -> v1.JobDetails:
        return await self._details(await self._engine.extend(request.id, request.seconds))

    async def WatchJobs(
        self, request: v1.WatchJobsRequest, context: Any
    ) -> AsyncIterator[v1.JobEvent]:
        """A snapshot of the watched jobs, then every change. With ids given, the stream
        ends once all of them have ended; without, it lasts until the caller leaves."""
        ids = [self._engine.job(ref).id for ref in request.ids]  # NotFound for any unknown
        try:
            async with self._engine.events.subscribe(ids) as changes:
                # Subscribed before the snapshot is read: no change falls in between.
                snapshot = [self._engine.job(i) for i in ids] if ids else self._engine.jobs()
                for job in snapshot:
                    yield v1.JobEvent(job=await self._details(job), snapshot=True)
                unfinished = {job.id for job in snapshot if not job.status.terminal}
                if ids and not unfinished:
                    return
                async for job in changes:
                    yield v1.JobEvent(job=await self._details(job))
                    if ids and _ended(job, unfinished):
                        return
        except WatcherTooSlow as exc:
            await context.abort(grpc.StatusCode.ABORTED, str(exc))

    async def _details(self, job: Job) -> v1.JobDetails:
        """As GetJob answers: live usage while the job has processes, and its output size."""
        details = await self._engine.details_of(job)
        return details_to_proto(job, usage=details.usage, output_bytes=details.output_bytes)


def _ended(job: Job, unfinished: set[str]) -> bool:
    """Track ``job``'s end; True once no watched job is left unfinished."""
    if job.status.terminal:
        unfinished.discard(job.id)
    return not unfinished


def query_from_request(request: v1.ListJobsRequest) -> JobQuery:
    page_size = request.pageSize or DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"invalid pageSize {request.pageSize}: must be between 1 and {MAX_PAGE_SIZE}"
        )
    return JobQuery(
        statuses=frozenset(_status(s) for s in request.statuses),
        name=request.name,
        labels=dict(request.labels),
        owner=request.owner,
        created_after=_utc(parse_time("createdAfter", request.createdAfter)),
        created_before=_utc(parse_time("createdBefore", request.createdBefore)),
        page_size=page_size,
        page_token=request.pageToken,
    )


def _status(value: str) -> Status:
    try:
        return Status(value.strip().upper())
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise InvalidArgument(f"invalid status {value!r}: use one of {known}") from None


def _utc(ts: datetime | None) -> datetime | None:
    """Stored times are UTC and compared as text: a query time must be UTC too."""
    return None if ts is None else ts.astimezone(UTC)
