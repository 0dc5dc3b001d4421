"""The SDK's control methods (mixed into :class:`jobyard.client.Client`): a job's details
with its resource usage, suspend and resume."""

from __future__ import annotations

import dataclasses
from typing import Any

from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.api.gen import jobyard_v1_pb2_grpc as v1_grpc
from jobyard.client.base import Connected
from jobyard.client.jobs import Job


@dataclasses.dataclass(frozen=True, slots=True)
class JobUsage:
    """What a job used: live while it runs, final once it ended."""

    cpu_seconds: float = 0.0
    memory_peak_bytes: int = 0
    memory_current_bytes: int = 0  # 0 once the job ended
    io_bytes: int = 0

    @classmethod
    def from_proto(cls, msg: v1.Usage) -> JobUsage:
        return cls(
            cpu_seconds=msg.cpuSeconds,
            memory_peak_bytes=msg.memoryPeakBytes,
            memory_current_bytes=msg.memoryCurrentBytes,
            io_bytes=msg.ioBytes,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpuSeconds": self.cpu_seconds,
            "memoryPeakBytes": self.memory_peak_bytes,
            "memoryCurrentBytes": self.memory_current_bytes,
            "ioBytes": self.io_bytes,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class JobDetails:
    """A job (with its history in ``job.updates``) and what only the server knows live."""

    job: Job
    usage: JobUsage | None  # None when the runtime could not tell
    suspended_seconds: float  # the current suspended period included
    output_bytes: int

    @classmethod
    def from_proto(cls, msg: v1.JobDetails) -> JobDetails:
        return cls(
            job=Job.from_details(msg),
            usage=JobUsage.from_proto(msg.usage) if msg.HasField("usage") else None,
            suspended_seconds=msg.suspendedSeconds,
            output_bytes=msg.outputBytes,
        )

    def to_dict(self) -> dict[str, Any]:
        """The job's fields as ``Job.to_dict`` gives them, plus the details' own."""
        return self.job.to_dict() | {
            "usage": None if self.usage is None else self.usage.to_dict(),
            "suspendedSeconds": self.suspended_seconds,
            "outputBytes": self.output_bytes,
        }


class ControlMethods(Connected):
    """Client methods for jobyard.v1: details (usage, history), suspend, resume."""

    @property
    def _control(self) -> v1_grpc.JobyardServiceStub:
        return v1_grpc.JobyardServiceStub(self._channel)

    def details(self, id: str) -> JobDetails:
        """The job with its history, resource usage, suspended time and output size."""
        return JobDetails.from_proto(self._unary(self._control.GetJob, v1.JobRef(id=id)))

    def suspend(self, id: str) -> JobDetails:
        """Freeze every process of a running job (admin); it keeps its memory and state."""
        return JobDetails.from_proto(self._unary(self._control.SuspendJob, v1.JobRef(id=id)))

    def resume(self, id: str) -> JobDetails:
        """Thaw a suspended job (admin); it continues where it was."""
        return JobDetails.from_proto(self._unary(self._control.ResumeJob, v1.JobRef(id=id)))


__all__ = ["ControlMethods", "JobDetails", "JobUsage"]
