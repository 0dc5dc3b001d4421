"""The CLI's control commands and the status details, through click's runner and a fake
client (see tests/unit/test_cli.py)."""

from __future__ import annotations

import dataclasses
import json

from jobyard.client import JobUpdate, JobUsage
from tests.unit.test_cli import JOB_ID, FakeClient, fake, invoke

__all__ = ["fake"]  # the fixture, used by name below

MIB = 1024 * 1024
HISTORY = (
    JobUpdate("2024-01-15T10:30:00.000Z", "QUEUED", "waiting in the queue"),
    JobUpdate("2024-01-15T10:30:00.010Z", "RUNNING", "running"),
)


def with_usage(c: FakeClient) -> None:
    c.usage_answer = JobUsage(cpu_seconds=1.234, memory_peak_bytes=48 * MIB, io_bytes=7)
    c.job_answer = dataclasses.replace(c.job_answer, updates=HISTORY)


def test_status_adds_usage_and_history_after_the_seeds_lines(fake: type[FakeClient]) -> None:
    result = invoke(["status", JOB_ID], with_usage)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"Id: {JOB_ID}", "Command: python3 script.py", "Status: RUNNING"]
    usage_at = lines.index("CPUSeconds: 1.23")
    assert lines[usage_at:] == [
        "CPUSeconds: 1.23",
        "PeakMemory: 48.0 MB",
        "IOBytes: 7",
        "History:",
        "  2024-01-15T10:30:00.000Z QUEUED waiting in the queue",
        "  2024-01-15T10:30:00.010Z RUNNING running",
    ]
    assert fake.instances[-1].calls == [("details", (JOB_ID,), {})]


def test_status_json_keeps_the_job_fields_and_adds_usage(fake: type[FakeClient]) -> None:
    result = invoke(["status", "--json", JOB_ID], with_usage)

    data = json.loads(result.stdout)
    assert (data["id"], data["status"], data["maxCPU"]) == (JOB_ID, "RUNNING", 50)
    assert data["usage"] == {
        "cpuSeconds": 1.234,
        "memoryPeakBytes": 48 * MIB,
        "memoryCurrentBytes": 0,
        "ioBytes": 7,
    }
    assert data["updates"][0]["status"] == "QUEUED"


def test_suspend_and_resume_print_the_new_status(fake: type[FakeClient]) -> None:
    suspended = invoke(["suspend", JOB_ID])
    resumed = invoke(["resume", JOB_ID])

    assert suspended.stdout == f"Job suspended:\nID: {JOB_ID}\nStatus: SUSPENDED\n"
    assert resumed.stdout == f"Job resumed:\nID: {JOB_ID}\nStatus: RUNNING\n"
    assert fake.instances[-2].calls == [("suspend", (JOB_ID,), {})]
    assert fake.instances[-1].calls == [("resume", (JOB_ID,), {})]


def test_run_passes_the_network_mode_or_name(fake: type[FakeClient]) -> None:
    result = invoke(["run", "--network=none", "--max-pids=64", "true"])
    [(method, _, kwargs)] = fake.instances[-1].calls
    named = invoke(["run", "--network=backend", "true"])

    assert result.exit_code == 0, result.output
    assert (method, kwargs["network"], kwargs["max_pids"]) == ("submit", "none", 64)
    # A created network's name: the server knows which exist (and answers NOT_FOUND).
    assert named.exit_code == 0, named.output
    assert fake.instances[-1].calls[0][2]["network"] == "backend"
