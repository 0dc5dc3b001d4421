"""What the SDK returns: plain, immutable views of the wire messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from jobyard.api.gen import joblet_pb2, jobyard_v1_pb2
from jobyard.domain.jobs import SECRET_MASK

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "STOPPED"})


@dataclasses.dataclass(frozen=True, slots=True)
class JobUpdate:
    """One entry of a job's history (UCloud ``updates``)."""

    timestamp: str  # RFC 3339
    status: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """A job as the server reported it. Times are RFC 3339 strings, "" when unset.

    ``secret_environment`` holds the secret variables' names only; every value is masked.
    """

    id: str
    name: str = ""
    command: str = ""
    args: tuple[str, ...] = ()
    status: str = ""
    exit_code: int = 0
    start_time: str = ""
    end_time: str = ""
    created_time: str = ""
    scheduled_time: str = ""
    max_cpu: int = 0
    cpu_cores: str = ""
    max_memory: int = 0
    max_iobps: int = 0
    max_pids: int = 0
    max_disk: int = 0  # MB for /work and output together; 0 = unlimited
    runtime: str = ""  # Joblet's runtime environment (e.g. python-3.11-ml)
    backend: str = ""  # where the job runs: local, slurm
    owner: str = ""
    termination_reason: str = ""
    message: str = ""
    network: str = ""
    time_limit_seconds: int = 0
    expires_at: str = ""
    replicas: int = 0
    workflow_id: str = ""
    project: str = ""  # the submitter's project (certificate O); "" = none
    volumes: tuple[str, ...] = ()
    uploads: tuple[str, ...] = ()
    updates: tuple[JobUpdate, ...] = ()  # history, oldest first (jobyard.v1 answers only)
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)
    secret_environment: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)

    @classmethod
    def from_proto(cls, msg: joblet_pb2.Job) -> Job:
        return cls(
            id=msg.id,
            name=msg.name,
            command=msg.command,
            args=tuple(msg.args),
            status=msg.status,
            exit_code=msg.exitCode,
            start_time=msg.startTime,
            end_time=msg.endTime,
            created_time=msg.createdTime,
            scheduled_time=msg.scheduledTime,
            max_cpu=msg.maxCPU,
            cpu_cores=msg.cpuCores,
            max_memory=msg.maxMemory,
            max_iobps=msg.maxIOBPS,
            max_pids=msg.maxPids,
            max_disk=msg.maxDisk,
            runtime=msg.runtime,
            backend=msg.backend,
            owner=msg.owner,
            termination_reason=msg.terminationReason,
            message=msg.message,
            network=msg.network,
            time_limit_seconds=msg.timeLimitSeconds,
            expires_at=msg.expiresAt,
            replicas=msg.replicas,
            workflow_id=msg.workflowId,
            volumes=tuple(msg.volumes),
            uploads=tuple(msg.uploads),
            project=msg.project,
            labels=dict(msg.labels),
            environment=dict(msg.environment),
            # Mask here too: a secret never reaches a caller's screen, even from an old server.
            secret_environment={key: SECRET_MASK for key in msg.secret_environment},
        )

    @classmethod
    def from_details(cls, msg: jobyard_v1_pb2.JobDetails) -> Job:
        """A job with its history, from a jobyard.v1 answer."""
        updates = tuple(JobUpdate(u.timestamp, u.status, u.message) for u in msg.updates)
        return dataclasses.replace(cls.from_proto(msg.job), updates=updates)

    @property
    def done(self) -> bool:
        """The job has ended (COMPLETED, FAILED or STOPPED) and will never change again."""
        return self.status in TERMINAL_STATUSES

    @property
    def command_line(self) -> str:
        # Plain spaces, as the seed prints it ("Command: echo hello world").
        return " ".join((self.command, *self.args))

    def to_dict(self) -> dict[str, Any]:
        """The job keyed by the wire's field names (``maxCPU``, ``startTime``, ...)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = [dataclasses.asdict(v) if isinstance(v, JobUpdate) else v for v in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            out[PROTO_NAMES[field.name]] = value
        return out


# Job field -> joblet.Job field, for JSON output that scripts can match against the proto.
PROTO_NAMES: dict[str, str] = {
    "id": "id",
    "name": "name",
    "command": "command",
    "args": "args",
    "status": "status",
    "exit_code": "exitCode",
    "start_time": "startTime",
    "end_time": "endTime",
    "created_time": "createdTime",
    "scheduled_time": "scheduledTime",
    "max_cpu": "maxCPU",
    "cpu_cores": "cpuCores",
    "max_memory": "maxMemory",
    "max_iobps": "maxIOBPS",
    "max_pids": "maxPids",
    "max_disk": "maxDisk",
    "runtime": "runtime",
    "backend": "backend",
    "owner": "owner",
    "termination_reason": "terminationReason",
    "message": "message",
    "network": "network",
    "time_limit_seconds": "timeLimitSeconds",
    "expires_at": "expiresAt",
    "replicas": "replicas",
    "workflow_id": "workflowId",
    "project": "project",
    "volumes": "volumes",
    "uploads": "uploads",
    "updates": "updates",
    "labels": "labels",
    "environment": "environment",
    "secret_environment": "secret_environment",
}


@dataclasses.dataclass(frozen=True, slots=True)
class StopResult:
    """What ``StopJob`` answers: the job's id, status, end time and exit code."""

    id: str
    status: str
    end_time: str
    exit_code: int

    @classmethod
    def from_proto(cls, msg: joblet_pb2.StopJobRes) -> StopResult:
        return cls(id=msg.id, status=msg.status, end_time=msg.endTime, exit_code=msg.exitCode)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "endTime": self.end_time,
            "exitCode": self.exit_code,
        }
