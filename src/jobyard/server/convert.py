"""Translation between joblet protobuf messages and domain types; nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import (
    NETWORK_HOST,
    SECRET_MASK,
    Job,
    JobSpec,
    Resources,
    Usage,
    rfc3339,
    utcnow,
)
from jobyard.domain.uploads import Upload

NO_EXIT_CODE = -1
# gRPC metadata carrying a create's request id (see jobyard.domain.requests).
IDEMPOTENCY_KEY = "idempotency-key"


def spec_from_request(req: pb.RunJobReq) -> JobSpec:
    return JobSpec(
        command=req.command,
        args=tuple(req.args),
        name=req.name,
        resources=Resources(
            max_cpu=req.maxCPU,
            cpu_cores=req.cpuCores,
            max_memory=req.maxMemory,
            max_iobps=req.maxIOBPS,
            max_pids=req.maxPids,
            max_disk=req.maxDisk,
        ),
        environment=dict(req.environment),
        secret_environment=dict(req.secret_environment),
        network=req.network or NETWORK_HOST,
        time_limit_seconds=float(req.timeLimitSeconds),
        schedule=parse_time("schedule", req.schedule),
        labels=dict(req.labels),
        replicas=req.replicas or 1,
        volumes=tuple(req.volumes),
        runtime_env=req.runtime,
        backend=req.backend,
    )


def uploads_from_proto(msgs: Iterable[pb.FileUpload]) -> list[Upload]:
    return [Upload(m.path, m.content, m.mode, m.isDirectory) for m in msgs]


def parse_time(what: str, value: str) -> datetime | None:
    """An RFC 3339 time from the wire ("" = none); naive times are taken as UTC."""
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid {what} {value!r}: expected an RFC 3339 time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def flat_fields(job: Job) -> dict[str, Any]:
    """The ten fields of the seed era's flat RunJobRes / GetJobStatusRes (7e244ec)."""
    spec, res = job.spec, job.spec.resources
    return {
        "id": job.id,
        "command": spec.command,
        "args": list(spec.args),
        "maxCPU": res.max_cpu,
        "maxMemory": res.max_memory,
        "maxIOBPS": res.max_iobps,
        "status": job.status.value,
        "startTime": rfc3339(job.started_at),
        "endTime": rfc3339(job.ended_at),
        "exitCode": NO_EXIT_CODE if job.exit_code is None else job.exit_code,
    }


def job_to_proto(job: Job) -> pb.Job:
    spec, res = job.spec, job.spec.resources
    return pb.Job(
        id=job.id,
        name=spec.name,
        command=spec.command,
        args=list(spec.args),
        maxCPU=res.max_cpu,
        cpuCores=res.cpu_cores,
        maxMemory=res.max_memory,
        maxIOBPS=res.max_iobps,
        status=job.status.value,
        startTime=rfc3339(job.started_at),
        endTime=rfc3339(job.ended_at),
        exitCode=NO_EXIT_CODE if job.exit_code is None else job.exit_code,
        scheduledTime=rfc3339(spec.schedule),
        runtime=spec.runtime_env,
        environment=dict(spec.environment),
        # Secrets never leave the server: names only, values masked.
        secret_environment=dict.fromkeys(spec.secret_environment, SECRET_MASK),
        owner=job.owner,
        terminationReason=job.reason.value if job.reason else "",
        createdTime=rfc3339(job.created_at),
        maxPids=res.max_pids,
        message=job.message,
        network=spec.network,
        timeLimitSeconds=int(spec.time_limit_seconds),
        expiresAt=rfc3339(job.expires_at),
        labels=dict(spec.labels),
        replicas=spec.replicas,
        workflowId=job.workflow_id,
        volumes=list(spec.volumes),
        uploads=list(spec.uploads),
        project=job.project,
        backend=job.backend,
        maxDisk=res.max_disk,
    )


def details_to_proto(
    job: Job, *, usage: Usage | None = None, output_bytes: int = 0
) -> v1.JobDetails:
    """A job with its history (UCloud ``updates``) for jobyard.v1 answers.

    ``usage`` overrides the recorded one (e.g. live figures of a running job).
    """
    usage = usage or job.usage
    return v1.JobDetails(
        job=job_to_proto(job),
        updates=[
            v1.StatusUpdate(
                timestamp=rfc3339(u.timestamp), status=u.status.value, message=u.message
            )
            for u in job.updates
        ],
        usage=None if usage is None else usage_to_proto(usage),
        suspendedSeconds=job.suspended_seconds_at(utcnow()),  # the open period too
        outputBytes=output_bytes,
    )


def usage_to_proto(usage: Usage) -> v1.Usage:
    return v1.Usage(
        cpuSeconds=usage.cpu_seconds,
        memoryPeakBytes=usage.memory_peak_bytes,
        memoryCurrentBytes=usage.memory_current_bytes,
        ioBytes=usage.io_bytes,
    )


def request_key(context: Any) -> str:
    """The create's request id from the call's metadata ("" when the client sent none)."""
    for key, value in context.invocation_metadata() or ():
        if key == IDEMPOTENCY_KEY:
            return value if isinstance(value, str) else bytes(value).decode(errors="replace")
    return ""
