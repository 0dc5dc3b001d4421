"""The native job as UCloud shows it: states, folded updates, seed messages, nulls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobyard.domain.jobs import Job, JobSpec, StatusUpdate
from jobyard.domain.status import Status, TerminationReason
from jobyard.http.views import job_view, ucloud_state

T0 = datetime(2021, 10, 4, 6, 42, 56, 235000, tzinfo=UTC)


def test_states_follow_the_spec_mapping() -> None:
    s, r = Status, TerminationReason
    assert {ucloud_state(x, None) for x in (s.SCHEDULED, s.QUEUED, s.INITIALIZING)} == {"IN_QUEUE"}
    assert ucloud_state(s.RUNNING, None) == "RUNNING"
    assert ucloud_state(s.SUSPENDED, None) == "SUSPENDED"
    assert ucloud_state(s.COMPLETED, r.EXITED) == "SUCCESS"
    assert ucloud_state(s.FAILED, r.OOM_KILLED) == "FAILURE"
    assert ucloud_state(s.STOPPED, r.TIME_LIMIT) == "EXPIRED"
    assert ucloud_state(s.STOPPED, r.USER_STOP) == "SUCCESS"
    assert ucloud_state(s.STOPPED, r.NO_CREDITS) == "SUCCESS"


def _job(status: Status, reason: TerminationReason | None, *history: Status) -> Job:
    updates = tuple(
        StatusUpdate(T0 + timedelta(seconds=i), h, "native") for i, h in enumerate(history)
    )
    return Job(id="j", owner="user", spec=JobSpec("sleep"), status=status, created_at=T0,
               reason=reason, updates=updates, expires_at=T0 + timedelta(hours=5))  # fmt: skip


def test_updates_fold_native_history_into_ucloud_states_with_the_seeds_messages() -> None:
    s = Status
    job = _job(s.STOPPED, TerminationReason.USER_STOP, s.QUEUED, s.INITIALIZING, s.RUNNING,
               s.RUNNING, s.STOPPING, s.STOPPED)  # fmt: skip
    view = job_view(job)
    assert [(u["state"], u["status"]) for u in view["updates"]] == [
        ("IN_QUEUE", "Your job is now waiting in the queue!"),
        ("RUNNING", "Your job is now running!"),
        ("SUCCESS", "Your job has been cancelled!"),
    ]
    assert view["updates"][0]["timestamp"] == view["createdAt"] == 1633329776235
    assert view["status"]["expiresAt"] is None  # ended: no longer expires
    assert view["owner"] == {"createdBy": "user", "project": None}
    assert view["output"] is None and view["permissions"] is None


def test_no_credits_and_time_limit_messages() -> None:
    s = Status
    no_credits = job_view(
        _job(s.STOPPED, TerminationReason.NO_CREDITS, s.QUEUED, s.RUNNING, s.STOPPED)
    )
    assert no_credits["updates"][-1]["status"] == "The job was terminated (No credits)"
    expired = job_view(
        _job(s.STOPPED, TerminationReason.TIME_LIMIT, s.QUEUED, s.RUNNING, s.STOPPED)
    )
    assert expired["updates"][-1]["state"] == "EXPIRED"
    running = job_view(_job(s.RUNNING, None, s.QUEUED, s.RUNNING))
    assert running["status"]["expiresAt"] == 1633329776235 + 5 * 3600 * 1000
