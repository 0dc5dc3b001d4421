"""How the CLI prints jobs: the seed's plain-text blocks, or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from jobyard.client import Job, JobDetails, StopResult
from jobyard.config import format_duration

MIB = 1024 * 1024


def started(job: Job) -> str:
    lines = ["Job started:", f"ID: {job.id}"]
    if job.name:
        lines.append(f"Name: {job.name}")
    lines += [
        f"Command: {job.command_line}",
        f"Status: {job.status}",
        f"StartTime: {job.start_time}",
        f"MaxCPU: {job.max_cpu}",
        f"MaxMemory: {job.max_memory}",
        _NETWORKS.get(job.network, f"Network: {job.network}"),
    ]
    if job.replicas > 1:
        lines.append(f"Replicas: {job.replicas} (ranks 0-{job.replicas - 1}; log --rank I)")
    return "\n".join(lines)


_NETWORKS = {
    "": "Network: host (shared with system)",
    "host": "Network: host (shared with system)",
    "none": "Network: none (isolated, loopback only)",
    "isolated": "Network: isolated (a namespace of its own)",
}


def status(job: Job) -> str:
    lines = [
        f"Id: {job.id}",
        f"Command: {job.command_line}",
        f"Status: {job.status}",
        f"Started At: {job.start_time}",
        f"Ended At: {job.end_time}",
        f"MaxCPU: {job.max_cpu}",
        f"MaxMemory: {job.max_memory}",
        f"MaxIOBPS: {job.max_iobps}",
        f"ExitCode: {job.exit_code}",
    ]
    extras = [
        ("Name", job.name),
        ("CPUCores", job.cpu_cores),
        ("MaxPids", str(job.max_pids) if job.max_pids else ""),
        ("MaxDisk", f"{job.max_disk} MB" if job.max_disk else ""),
        ("Replicas", str(job.replicas) if job.replicas > 1 else ""),
        ("Runtime", job.runtime),
        ("Network", job.network if job.network not in ("", "host") else ""),
        ("Volumes", ", ".join(job.volumes)),
        ("Uploads", ", ".join(job.uploads)),
        ("Backend", job.backend),
        ("Owner", job.owner),
        ("Project", job.project),
        ("Labels", _pairs(job.labels)),
        ("ScheduledTime", job.scheduled_time),
        ("TimeLimit", format_duration(job.time_limit_seconds) if job.time_limit_seconds else ""),
        ("ExpiresAt", job.expires_at),
        ("Reason", job.termination_reason),
        ("Message", job.message),
        ("Environment", _pairs(job.environment)),
        # Values are masked by the client: only the names of secrets are ever shown.
        ("SecretEnvironment", _pairs(job.secret_environment)),
    ]
    lines += [f"{label}: {value}" for label, value in extras if value]
    return "\n".join(lines)


def details(d: JobDetails) -> str:
    """``status``'s lines, then what only the server knows live: usage and history."""
    lines = [status(d.job)]
    if d.usage is not None:
        lines += [
            f"CPUSeconds: {d.usage.cpu_seconds:.2f}",
            f"PeakMemory: {d.usage.memory_peak_bytes / MIB:.1f} MB",
        ]
        if d.usage.memory_current_bytes:
            lines.append(f"Memory: {d.usage.memory_current_bytes / MIB:.1f} MB")
        lines.append(f"IOBytes: {d.usage.io_bytes}")
    if d.suspended_seconds:
        lines.append(f"SuspendedSeconds: {d.suspended_seconds:.1f}")
    if d.output_bytes:
        lines.append(f"OutputBytes: {d.output_bytes}")
    if d.job.updates:
        lines.append("History:")
        lines += [f"  {u.timestamp} {u.status} {u.message}" for u in d.job.updates]
    return "\n".join(lines)


def job_list(jobs: Iterable[Job]) -> str:
    lines = [
        f"{job.id} {job.status} StartTime: {job.start_time} Command: {job.command_line}"
        for job in jobs
    ]
    return "\n".join(lines) if lines else "No jobs"


def stopped(result: StopResult) -> str:
    return "\n".join(
        [
            "Job stopped successfully:",
            f"ID: {result.id}",
            f"Status: {result.status}",
            f"ExitCode: {result.exit_code}",
            f"EndTime: {result.end_time}",
        ]
    )


def as_json(value: Job | StopResult | JobDetails | Iterable[Job]) -> str:
    data: Any
    if isinstance(value, Job | StopResult | JobDetails):
        data = value.to_dict()
    else:
        data = [job.to_dict() for job in value]
    return json.dumps(data, indent=2)


def _pairs(env: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(env.items()))
