"""Suspend, resume and resource usage: the engine's control of jobs that are running.

:class:`JobControl` is a mixin of :class:`jobyard.engine.jobs.JobEngine`, kept in its own
module so that the lifecycle core stays readable; its changes still go through the
engine's ``_transition`` (one transition table, events published).

Suspension is accounted on the job: ``suspended_at`` opens a period, resuming (or the
job's end) closes it into ``suspended_seconds``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from jobyard.domain.access import MAX_SHARES, Identity, may_change
from jobyard.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    PermissionDenied,
    StaleTransition,
    job_not_running,
)
from jobyard.domain.jobs import Job, Usage, utcnow
from jobyard.domain.status import Status
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime.base import Handle, Runtime
from jobyard.store.base import Store

log = logging.getLogger("jobyard.engine")


@dataclasses.dataclass(frozen=True, slots=True)
class JobDetails:
    """A job with what only the live system knows: usage so far and output size."""

    job: Job
    usage: Usage | None  # live while the job runs, as recorded once it ended
    output_bytes: int


def job_not_suspended(job_id: str, status: str) -> FailedPrecondition:
    return FailedPrecondition(f"job is not suspended: {job_id} (current status: {status})")


def suspension_closed(job: Job, now: datetime) -> dict[str, Any]:
    """The fields that close the job's open SUSPENDED period, if it has one."""
    if job.suspended_at is None:
        return {}
    return {"suspended_seconds": job.suspended_seconds_at(now), "suspended_at": None}


class JobControl:
    """Suspend/resume through the runtime's freezer, and usage from the runtime."""

    _store: Store
    _hub: LogHub
    _layout: JobLayout

    def job(self, caller: Identity, ref: str) -> Job:
        raise NotImplementedError  # JobEngine's

    def _runtime(self, job: Job) -> Runtime:
        raise NotImplementedError  # JobEngine's: the backend the job runs on

    def _transition(self, job_id: str, new: Status, message: str, **fields: Any) -> Job:
        raise NotImplementedError  # JobEngine's

    def _update(self, job_id: str, **fields: Any) -> Job:
        raise NotImplementedError  # JobEngine's

    def job_to_change(self, caller: Identity, ref: str) -> Job:
        """The job ``ref`` names, if ``caller`` may act on it (a job shared with it to see
        only: PermissionDenied; one it may not see: NotFound)."""
        job = self.job(caller, ref)
        if not may_change(caller, job):
            raise PermissionDenied(f"job {job.id} is shared with {caller.name} to see only")
        return job

    def share(self, job_id: str, shared_with: Collection[str]) -> Job:
        """Set who else sees the job (``user:NAME`` / ``project:NAME`` principals, see
        :func:`jobyard.domain.access.principal`), as its project's members do."""
        names = tuple(sorted(set(shared_with)))
        if len(names) > MAX_SHARES:
            raise InvalidArgument(f"invalid sharing: more than {MAX_SHARES} users and projects")
        job = self._update(job_id, shared_with=names)
        log.info("job shared | jobId=%s with=%d", job_id, len(names))
        return job

    async def suspend(self, caller: Identity, ref: str) -> Job:
        """Freeze every process of a RUNNING job; it makes no progress until resumed."""
        job = self.job_to_change(caller, ref)
        if job.status is not Status.RUNNING:
            raise job_not_running(job.id, job.status.value)
        handle = Handle(job.backend_id)
        await self._runtime(job).suspend(job.id, handle)
        try:
            job = self._transition(job.id, Status.SUSPENDED, "suspended", suspended_at=utcnow())
        except StaleTransition:
            # A stop, a time limit or another suspend won the race.
            current = self._store.get(job.id)
            if current.status is not Status.SUSPENDED:
                await self._thaw_quietly(current, handle)
            raise job_not_running(job.id, current.status.value) from None
        log.info("job suspended | jobId=%s", job.id)
        await self._store.committed()
        return job

    async def _thaw_quietly(self, job: Job, handle: Handle) -> None:
        """Undo our freeze: a job that is not SUSPENDED must never stay frozen."""
        if job.status.terminal:
            return
        with contextlib.suppress(JobyardError, OSError):
            await self._runtime(job).resume(job.id, handle)

    async def resume(self, caller: Identity, ref: str) -> Job:
        """Thaw a SUSPENDED job; it continues where it was."""
        job = self.job_to_change(caller, ref)
        if job.status is not Status.SUSPENDED:
            raise job_not_suspended(job.id, job.status.value)
        await self._runtime(job).resume(job.id, Handle(job.backend_id))
        closed = suspension_closed(job, utcnow())
        try:
            job = self._transition(job.id, Status.RUNNING, "resumed", **closed)
        except StaleTransition:
            current = self._store.get(job.id)
            raise job_not_suspended(job.id, current.status.value) from None
        log.info("job resumed | jobId=%s suspendedSeconds=%.3f", job.id, job.suspended_seconds)
        await self._store.committed()
        return job

    async def details(self, caller: Identity, ref: str) -> JobDetails:
        return await self.details_of(self.job(caller, ref))

    async def details_of(self, job: Job) -> JobDetails:
        """``job`` with live usage while it has processes, else the recorded usage."""
        usage = job.usage
        if job.status.active and job.backend_id:
            try:
                usage = await self._runtime(job).usage(job.id, Handle(job.backend_id))
            except (JobyardError, OSError) as exc:
                log.warning("usage not readable | jobId=%s error=%s", job.id, exc)
        # Every rank's output counts, as it does against the output limit.
        return JobDetails(job, usage, sum(self._layout.output_sizes(job.id)))

    async def _final_usage(self, runtime: Runtime, job_id: str, handle: Handle) -> Usage | None:
        """Usage as the job ended, read before cleanup releases the counters."""
        try:
            usage = await runtime.usage(job_id, handle)
        except Exception:  # never let accounting stand in the way of recording the end
            log.exception("final usage not readable | jobId=%s", job_id)
            return None
        return dataclasses.replace(usage, memory_current_bytes=0)  # nothing is left running
