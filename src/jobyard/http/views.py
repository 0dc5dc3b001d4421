"""The native job as UCloud shows it: Job, JobStatus, JobUpdate (seed 001's JSON).

Keys come in the seed's order, times are epoch milliseconds, ids strings, and absent
values are ``null`` (never dropped). States follow SPEC §1's mapping; the history is the
native one, with consecutive entries of the same UCloud state folded into one (QUEUED and
INITIALIZING are both IN_QUEUE; an extension or a stop request changes no UCloud state).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobyard.domain.jobs import Job
from jobyard.domain.status import Status, TerminationReason

Json = dict[str, Any]

IN_QUEUE, RUNNING, SUSPENDED = "IN_QUEUE", "RUNNING", "SUSPENDED"
SUCCESS, FAILURE, EXPIRED = "SUCCESS", "FAILURE", "EXPIRED"
UCLOUD_STATES = (IN_QUEUE, RUNNING, SUSPENDED, SUCCESS, FAILURE, EXPIRED)

_STATES: dict[Status, str] = {
    Status.SCHEDULED: IN_QUEUE,
    Status.QUEUED: IN_QUEUE,
    Status.INITIALIZING: IN_QUEUE,
    Status.RUNNING: RUNNING,
    Status.SUSPENDED: SUSPENDED,
    Status.STOPPING: RUNNING,  # processes are still there until STOPPED
    Status.COMPLETED: SUCCESS,
    Status.FAILED: FAILURE,
}
_MESSAGES = {
    IN_QUEUE: "Your job is now waiting in the queue!",
    RUNNING: "Your job is now running!",
    SUSPENDED: "Your job has been suspended!",
    EXPIRED: "Your job has reached its time limit!",
}
_STOP_MESSAGES = {
    TerminationReason.USER_STOP: "Your job has been cancelled!",
    TerminationReason.NO_CREDITS: "The job was terminated (No credits)",
    TerminationReason.OUTPUT_LIMIT: "Your job was stopped: it wrote more than its output limit",
}

# JobSpecification keys in the seed's order (what a create sent, echoed back).
SPEC_KEYS = (
    "application", "product", "name", "replicas", "allowDuplicateJob", "parameters",
    "resources", "timeAllocation", "openedFile", "restartOnExit", "sshEnabled",
)  # fmt: skip


def ucloud_state(status: Status, reason: TerminationReason | None) -> str:
    if status is Status.STOPPED:
        return EXPIRED if reason is TerminationReason.TIME_LIMIT else SUCCESS
    return _STATES[status]


def millis(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp() * 1000)


def updates(job: Job) -> list[Json]:
    """The job's history as UCloud updates, one per change of UCloud state."""
    out: list[Json] = []
    last = ""
    for entry in job.updates:
        reason = job.reason if entry.status.terminal else None
        state = ucloud_state(entry.status, reason)
        if state == last:
            continue
        last = state
        out.append(update(state, _message(state, entry.status, reason, entry.message),
                          millis(entry.timestamp)))  # fmt: skip
    return out


def update(state: str, status: str, timestamp: int | None) -> Json:
    return {
        "state": state,
        "outputFolder": None,
        "status": status,
        "expectedState": None,
        "expectedDifferentState": None,
        "newTimeAllocation": None,
        "allowRestart": None,
        "newMounts": None,
        "timestamp": timestamp,
    }


def _message(state: str, status: Status, reason: TerminationReason | None, native: str) -> str:
    if status is Status.STOPPED and reason in _STOP_MESSAGES:
        return _STOP_MESSAGES[reason]
    if state == SUCCESS:
        return "Your job has finished successfully!"
    if state == FAILURE:
        return f"Your job has failed: {native}"
    return _MESSAGES.get(state, native)


def job_status(job: Job, resolved: Mapping[str, Any] | None = None) -> Json:
    """JobStatus; ``resolved`` holds what the include flags asked for (else null)."""
    extra = resolved or {}
    return {
        "state": ucloud_state(job.status, job.reason),
        "jobParametersJson": extra.get("jobParametersJson"),
        "startedAt": millis(job.started_at),
        # A finished job no longer expires (the seed's terminate answers null).
        "expiresAt": None if job.status.terminal else millis(job.expires_at),
        "resolvedApplication": extra.get("resolvedApplication"),
        "resolvedSupport": extra.get("resolvedSupport"),
        "resolvedProduct": extra.get("resolvedProduct"),
        "allowRestart": False,
    }


def specification(job: Job, stored: Mapping[str, Any] | None) -> Json:
    """What the create asked for; for a job submitted on another face, what it amounts to
    (no application or product: it ran a command)."""
    if stored is not None:
        return {key: stored.get(key) for key in SPEC_KEYS}
    limit = job.spec.time_limit_seconds
    derived: Json = dict.fromkeys(SPEC_KEYS)
    derived.update(
        name=job.spec.name or None,
        replicas=job.spec.replicas,
        allowDuplicateJob=False,
        timeAllocation=duration(limit) if limit else None,
    )
    return derived


def duration(seconds: float) -> Json:
    whole = round(seconds)
    return {"hours": whole // 3600, "minutes": whole % 3600 // 60, "seconds": whole % 60}


def job_view(
    job: Job,
    stored: Mapping[str, Any] | None = None,
    resolved: Mapping[str, Any] | None = None,
) -> Json:
    """The whole Job, as ``GET /api/jobs/retrieve`` answers it."""
    return {
        "id": job.id,
        "owner": {"createdBy": job.owner, "project": job.project or None},
        "updates": updates(job),
        "specification": specification(job, stored),
        "status": job_status(job, resolved),
        "createdAt": millis(job.created_at),
        "output": None,
        "permissions": None,
    }
