"""A job's history as the JobUpdates a provider sends UCloud/Core (seed 000's texts).

Pure and deterministic: the updates of a job are a function of its (append-only) history,
so the outbox only needs to count how many it has queued. Consecutive entries of the same
UCloud state fold into one; IN_QUEUE is never sent (Core created the job IN_QUEUE).
"""

from __future__ import annotations

from typing import Any

from jobyard.domain.jobs import Job, StatusUpdate
from jobyard.domain.status import Status, TerminationReason
from jobyard.http.views import EXPIRED, FAILURE, IN_QUEUE, RUNNING, SUCCESS, SUSPENDED, ucloud_state

Json = dict[str, Any]

NO_LONGER_AVAILABLE = "Your job is no longer available"
_TEXTS = {
    RUNNING: "The job is now running!",
    SUSPENDED: "The job has been suspended!",
    SUCCESS: "The job has finished processing!",
    EXPIRED: "The job has reached its time limit!",
}
_STOP_TEXTS = {
    TerminationReason.USER_STOP: "The job was cancelled!",
    TerminationReason.NO_CREDITS: "The job was terminated (No credits)",
}


def job_update(state: str, status: str) -> Json:
    """A JobUpdate as seed 000 sends it (the timestamp is Core's to fill in)."""
    return {
        "state": state,
        "outputFolder": None,
        "status": status,
        "expectedState": None,
        "expectedDifferentState": None,
        "newTimeAllocation": None,
        "allowRestart": None,
        "newMounts": None,
        "timestamp": 0,
    }


def core_updates(job: Job) -> list[Json]:
    """Every update Core should have had for ``job`` so far, in order."""
    out: list[Json] = []
    last = IN_QUEUE
    for entry in job.updates:
        reason = job.reason if entry.status.terminal else None
        state = ucloud_state(entry.status, reason)
        if state == last:
            continue
        last = state
        out.append(job_update(state, _text(state, entry, reason)))
    return out


def final_update(job: Job) -> Json | None:
    """The update that ended the job (None while it has not ended)."""
    if not job.status.terminal:
        return None
    updates = core_updates(job)
    return updates[-1] if updates else None


def _text(state: str, entry: StatusUpdate, reason: TerminationReason | None) -> str:
    if entry.status is Status.STOPPED and reason in _STOP_TEXTS:
        return _STOP_TEXTS[reason]
    if state == FAILURE:
        why = f" ({reason})" if reason is not None else ""
        return f"The job has failed: {entry.message}{why}"
    if entry.status is Status.STOPPED and state == SUCCESS:
        return f"The job was stopped: {entry.message}"
    return _TEXTS.get(state, entry.message)


__all__ = ["NO_LONGER_AVAILABLE", "core_updates", "final_update", "job_update"]
