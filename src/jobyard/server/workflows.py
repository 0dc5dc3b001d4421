"""The seed's workflow RPCs on joblet.JobService: translation only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.domain.workflows import WorkflowRecord
from jobyard.engine.workflows import WorkflowJobView, WorkflowRunner
from jobyard.server.auth import current_identity
from jobyard.server.convert import NO_EXIT_CODE, request_key, uploads_from_proto

NOT_STARTED_ID = "0"  # the seed's jobId for jobs not started yet


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def workflow_job_to_proto(view: WorkflowJobView) -> pb.WorkflowJob:
    job = view.job
    msg = pb.WorkflowJob(
        jobId=job.id if job else NOT_STARTED_ID,
        jobName=view.name,
        status=view.status,
        dependencies=list(view.dependencies),
        exitCode=NO_EXIT_CODE if job is None or job.exit_code is None else job.exit_code,
        terminationReason=(job.reason.value if job and job.reason else view.row.reason or ""),
    )
    if job is not None and job.started_at is not None:
        msg.startTime.CopyFrom(_timestamp(job.started_at))
    if job is not None and job.ended_at is not None:
        msg.endTime.CopyFrom(_timestamp(job.ended_at))
    return msg


def workflow_info(record: WorkflowRecord, views: list[WorkflowJobView]) -> pb.WorkflowInfo:
    started = [v.job.started_at for v in views if v.job and v.job.started_at]
    msg = pb.WorkflowInfo(
        uuid=record.id,
        workflow=record.name,
        status=record.status.value,
        totalJobs=len(views),
        completedJobs=sum(v.status == "COMPLETED" for v in views),
        failedJobs=sum(v.job is not None and v.status in ("FAILED", "STOPPED") for v in views),
        canceledJobs=sum(v.job is None and v.status == "STOPPED" for v in views),
        yamlContent=record.shown_document,
        owner=record.owner,
    )
    msg.createdAt.CopyFrom(_timestamp(record.created_at))
    if started:
        msg.startedAt.CopyFrom(_timestamp(min(started)))
    if record.ended_at is not None:
        msg.completedAt.CopyFrom(_timestamp(record.ended_at))
    return msg


class WorkflowRpcs:
    _workflows: WorkflowRunner

    def _status(self, ref: str) -> pb.GetWorkflowStatusResponse:
        record = self._workflows.workflow(current_identity(), ref)
        views = self._workflows.jobs_of(record)
        return pb.GetWorkflowStatusResponse(
            workflow=workflow_info(record, views),
            jobs=[workflow_job_to_proto(v) for v in views],
        )

    async def RunWorkflow(
        self, request: pb.RunWorkflowRequest, context: Any
    ) -> pb.RunWorkflowResponse:
        record = await self._workflows.submit(
            current_identity(),
            request.yamlContent,
            request.workflow,
            uploads=uploads_from_proto(request.workflowFiles),
            request_key=request_key(context),
        )
        return pb.RunWorkflowResponse(workflowUuid=record.id, status=record.status.value)

    async def GetWorkflowStatus(
        self, request: pb.GetWorkflowStatusRequest, context: Any
    ) -> pb.GetWorkflowStatusResponse:
        return self._status(request.workflowUuid)

    async def ListWorkflows(
        self, request: pb.ListWorkflowsRequest, context: Any
    ) -> pb.ListWorkflowsResponse:
        records = self._workflows.workflows(current_identity())
        if not request.includeCompleted:
            records = [r for r in records if r.ended_at is None]
        infos = [workflow_info(r, self._workflows.jobs_of(r)) for r in records]
        return pb.ListWorkflowsResponse(workflows=infos)

    async def GetWorkflowJobs(
        self, request: pb.GetWorkflowJobsRequest, context: Any
    ) -> pb.GetWorkflowJobsResponse:
        return pb.GetWorkflowJobsResponse(jobs=self._status(request.workflowUuid).jobs)


class WorkflowControlRpcs:
    """jobyard.v1 workflow control (the seed has no RPC to stop a workflow)."""

    _workflows: WorkflowRunner

    async def StopWorkflow(self, request: v1.WorkflowRef, context: Any) -> v1.WorkflowRef:
        record = await self._workflows.stop(current_identity(), request.id)
        return v1.WorkflowRef(id=record.id)
