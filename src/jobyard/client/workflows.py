"""Workflow views and the SDK's workflow methods (mixed into :class:`Client`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from pathlib import Path
from typing import Any

from jobyard.api.gen import joblet_pb2, joblet_pb2_grpc, jobyard_v1_pb2, jobyard_v1_pb2_grpc
from jobyard.client.base import Connected
from jobyard.client.uploads import workflow_files
from jobyard.domain.jobs import rfc3339

WORKFLOW_TERMINAL = frozenset({"COMPLETED", "FAILED", "STOPPED"})


def _ts(value: Any, present: bool) -> str:
    """A wire Timestamp in the same RFC 3339 form as every other time the SDK shows."""
    return rfc3339(value.ToDatetime(tzinfo=UTC)) if present else ""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowJob:
    job_id: str  # "0" until the job was started
    name: str
    status: str
    dependencies: tuple[str, ...]
    exit_code: int
    start_time: str
    end_time: str
    termination_reason: str

    @classmethod
    def from_proto(cls, msg: joblet_pb2.WorkflowJob) -> WorkflowJob:
        return cls(
            job_id=msg.jobId,
            name=msg.jobName,
            status=msg.status,
            dependencies=tuple(msg.dependencies),
            exit_code=msg.exitCode,
            start_time=_ts(msg.startTime, msg.HasField("startTime")),
            end_time=_ts(msg.endTime, msg.HasField("endTime")),
            termination_reason=msg.terminationReason,
        )

    @property
    def started(self) -> bool:
        return self.job_id != "0"


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowInfo:
    id: str
    name: str
    status: str
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    canceled_jobs: int
    created_time: str
    started_time: str
    end_time: str
    owner: str

    @classmethod
    def from_proto(cls, msg: joblet_pb2.WorkflowInfo) -> WorkflowInfo:
        return cls(
            id=msg.uuid, name=msg.workflow, status=msg.status, total_jobs=msg.totalJobs,
            completed_jobs=msg.completedJobs, failed_jobs=msg.failedJobs,
            canceled_jobs=msg.canceledJobs,
            created_time=_ts(msg.createdAt, msg.HasField("createdAt")),
            started_time=_ts(msg.startedAt, msg.HasField("startedAt")),
            end_time=_ts(msg.completedAt, msg.HasField("completedAt")),
            owner=msg.owner,
        )  # fmt: skip

    @property
    def done(self) -> bool:
        return self.status in WORKFLOW_TERMINAL


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowStatus:
    workflow: WorkflowInfo
    jobs: tuple[WorkflowJob, ...]


class WorkflowMethods(Connected):
    """Client methods for the seed's workflow RPCs (joblet.JobService)."""

    def run_workflow(
        self,
        document: str | Path,
        name: str = "",
        *,
        base: Path | None = None,
        request_id: str | None = None,
    ) -> WorkflowStatus:
        """Submit a workflow: its YAML text, or the path of a YAML file.

        Files its jobs name in ``uploads: {files: [...]}`` are read relative to ``base``
        (default: the YAML file's directory, or the current one for YAML text) and sent along.
        Idempotent as :meth:`Client.submit` is: a lost answer is retried, one workflow at most.
        """
        if isinstance(document, Path):
            name = name or document.name
            base = base or document.parent
            document = document.read_text()
        files = workflow_files(document, base or Path.cwd())
        stub = joblet_pb2_grpc.JobServiceStub(self._channel)
        request = joblet_pb2.RunWorkflowRequest(
            workflow=name, yamlContent=document, workflowFiles=files
        )
        res = self._create(stub.RunWorkflow, request, request_id)
        return self.workflow(res.workflowUuid)

    def workflow(self, id: str) -> WorkflowStatus:
        stub = joblet_pb2_grpc.JobServiceStub(self._channel)
        res = self._unary(
            stub.GetWorkflowStatus, joblet_pb2.GetWorkflowStatusRequest(workflowUuid=id)
        )
        return WorkflowStatus(
            workflow=WorkflowInfo.from_proto(res.workflow),
            jobs=tuple(WorkflowJob.from_proto(j) for j in res.jobs),
        )

    def workflows(self, include_completed: bool = True) -> list[WorkflowInfo]:
        """Workflows, oldest first; ``include_completed=False``: only the unfinished ones."""
        stub = joblet_pb2_grpc.JobServiceStub(self._channel)
        request = joblet_pb2.ListWorkflowsRequest(includeCompleted=include_completed)
        res = self._unary(stub.ListWorkflows, request)
        return [WorkflowInfo.from_proto(w) for w in res.workflows]

    def stop_workflow(self, id: str) -> WorkflowStatus:
        stub = jobyard_v1_pb2_grpc.JobyardServiceStub(self._channel)
        res = self._unary(stub.StopWorkflow, jobyard_v1_pb2.WorkflowRef(id=id))
        return self.workflow(res.id)
