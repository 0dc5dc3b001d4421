"""details_to_proto: the one JobDetails builder shared by GetJob, ListJobs and WatchJobs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from jobyard.domain.jobs import SECRET_MASK, Job, JobSpec, StatusUpdate, Usage
from jobyard.domain.status import Status
from jobyard.server.convert import details_to_proto

T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def _job(**changes: Any) -> Job:
    base = Job(
        id="f47ac10b-58cc-4372-a567-0e02b2c3d479",
        owner="alice",
        spec=JobSpec(command="echo", secret_environment={"TOKEN": "s3cr3t"}),
        status=Status.RUNNING,
        created_at=T0,
        updates=(
            StatusUpdate(T0, Status.QUEUED, "waiting in the queue"),
            StatusUpdate(T0, Status.RUNNING, "running"),
        ),
    )
    return dataclasses.replace(base, **changes)


def test_details_carry_the_job_and_its_history_oldest_first() -> None:
    msg = details_to_proto(_job(suspended_seconds=1.5), output_bytes=42)

    assert msg.job.id == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    assert [(u.status, u.message) for u in msg.updates] == [
        ("QUEUED", "waiting in the queue"),
        ("RUNNING", "running"),
    ]
    assert msg.updates[0].timestamp == "2024-01-15T10:30:00.000Z"
    assert (msg.suspendedSeconds, msg.outputBytes) == (1.5, 42)
    assert not msg.HasField("usage")


def test_given_usage_wins_over_the_recorded_one() -> None:
    job = _job(usage=Usage(cpu_seconds=1.0))
    assert details_to_proto(job).usage.cpuSeconds == 1.0
    live = details_to_proto(job, usage=Usage(cpu_seconds=2.0, memory_peak_bytes=7))
    assert (live.usage.cpuSeconds, live.usage.memoryPeakBytes) == (2.0, 7)


def test_secret_values_never_reach_the_message() -> None:
    msg = details_to_proto(_job())
    assert dict(msg.job.secret_environment) == {"TOKEN": SECRET_MASK}
    assert b"s3cr3t" not in msg.SerializeToString()
