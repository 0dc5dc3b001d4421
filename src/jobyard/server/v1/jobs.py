"""jobyard.v1 RPCs: jobs — list (filtered, paged), delete, extend, watch."""

from __future__ import annotations

import contextlib
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
from jobyard.server.convert import (
    details_to_proto,
    parse_time,
    request_key,
    spec_from_request,
    uploads_from_proto,
)
from jobyard.store.base import JobQuery

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class JobRpcs:
    _engine: JobEngine

    async def RunJob(self, request: pb.RunJobReq, context: Any) -> v1.JobDetails:
        job = await self._engine.submit(
            current_identity(),
            spec_from_request(request),
            uploads=uploads_from_proto(request.uploads),
            request_key=request_key(context),
        )
        return await self._details(job)

    async def ListJobs(self, request: v1.ListJobsRequest, context: Any) -> v1.ListJobsResponse:
        jobs, token = self._engine.query(current_identity(), query_from_request(request))
        details = [await self._details(job) for job in jobs]
        return v1.ListJobsResponse(jobs=details, nextPageToken=token)

    async def DeleteJob(self, request: v1.JobRef, context: Any) -> v1.JobRef:
        job = await self._engine.delete(current_identity(), request.id)
        return v1.JobRef(id=job.id)

    async def ExtendJob(self, request: v1.ExtendJobRequest, context: Any) -> v1.JobDetails:
        job = await self._engine.extend(current_identity(), request.id, request.seconds)
        return await self._details(job)

    async def WatchJobs(
        self, request: v1.WatchJobsRequest, context: Any
    ) -> AsyncIterator[v1.JobEvent]:
        """The engine's watch (a snapshot, then every change), translated."""
        changes = self._engine.watch_jobs(current_identity(), request.ids)
        try:
            async with contextlib.aclosing(changes):
                async for change in changes:
                    details = await self._details(change.job)
                    yield v1.JobEvent(job=details, snapshot=change.snapshot)
        except WatcherTooSlow as exc:
            await context.abort(grpc.StatusCode.ABORTED, str(exc))

    async def _details(self, job: Job) -> v1.JobDetails:
        """As GetJob answers: live usage while the job has processes, and its output size."""
        details = await self._engine.details_of(job)
        return details_to_proto(job, usage=details.usage, output_bytes=details.output_bytes)


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
