"""When a job starts and when it must end: scheduled starts, time limits, extensions.

A time limit is wall time from the start (suspended time counts): ``expires_at =
started_at + time_limit_seconds``. Extending grows the limit (UCloud ``timeAllocation``,
JuliaHub ``extend_job``), so the expiry moves with it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jobyard.config import format_duration
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, job_not_running
from jobyard.domain.jobs import MAX_TIME_LIMIT_SECONDS, Job, JobSpec, rfc3339
from jobyard.domain.status import TERMINAL, Status

# Statuses in which a job may still be given more time.
EXTENDABLE = frozenset(Status) - TERMINAL - {Status.STOPPING}
QUEUED_MESSAGE = "waiting in the queue"
START_TIMER, EXPIRY_TIMER = "start", "expiry"


def whole_millis(ts: datetime) -> datetime:
    """``ts`` cut to the wire's precision, so a time read from the API matches it exactly
    (``createdAfter`` set to a job's ``createdTime`` excludes that job)."""
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def ceil_millis(ts: datetime | None) -> datetime | None:
    """``ts`` rounded up to the wire's precision. A schedule kept with microseconds would let
    a start at or after it show (cut to milliseconds) as before it."""
    if ts is None or ts.microsecond % 1000 == 0:
        return ts
    return whole_millis(ts) + timedelta(milliseconds=1)


def not_before(ts: datetime, *earlier: datetime | None) -> datetime:
    """``ts``, or the latest of ``earlier`` if ``ts`` precedes it.

    Times measured by other clocks (a file's mtime is stamped from the kernel's coarse clock,
    up to a tick behind) must not put an effect before the events that caused it: an end
    before the stop that caused it, or before the start.
    """
    return max([ts, *(t for t in earlier if t is not None)])


def initial_status(spec: JobSpec, now: datetime) -> tuple[Status, str]:
    """SCHEDULED until a start time in the future, else QUEUED (a past time starts now)."""
    if spec.schedule is not None and spec.schedule > now:
        return Status.SCHEDULED, f"scheduled to start at {rfc3339(spec.schedule)}"
    return Status.QUEUED, QUEUED_MESSAGE


def expiry(spec: JobSpec, started_at: datetime) -> datetime | None:
    if not spec.time_limit_seconds:
        return None
    return started_at + timedelta(seconds=spec.time_limit_seconds)


def extension(job: Job, seconds: float) -> tuple[dict[str, Any], str]:
    """The fields and history message that give ``job`` ``seconds`` more; refuses what
    cannot be extended."""
    if not seconds > 0:
        raise InvalidArgument(f"invalid extension {seconds:g}s: must be a positive number")
    if job.status not in EXTENDABLE:
        raise job_not_running(job.id, job.status.value)
    limit = job.spec.time_limit_seconds
    if not limit:
        raise FailedPrecondition(f"job has no time limit to extend: {job.id}")
    new_limit = limit + seconds
    if new_limit > MAX_TIME_LIMIT_SECONDS:
        raise InvalidArgument(
            f"invalid extension {seconds:g}s: the time limit would exceed {MAX_TIME_LIMIT_SECONDS}s"
        )
    fields: dict[str, Any] = {"time_limit_seconds": new_limit}
    message = f"time limit extended by {format_duration(seconds)}"
    if job.started_at is not None:
        fields["expires_at"] = job.started_at + timedelta(seconds=new_limit)
        message += f"; expires at {rfc3339(fields['expires_at'])}"
    return fields, message


__all__ = [
    "EXTENDABLE",
    "ceil_millis",
    "expiry",
    "extension",
    "initial_status",
    "not_before",
    "whole_millis",
]
