"""The end-user Jobs API (seed 001): create, retrieve, browse, extend, terminate, suspend,
unsuspend, retrieveProducts, retrieveUtilization."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from jobyard.domain.access import Identity, authorize
from jobyard.domain.errors import FailedPrecondition, InvalidArgument
from jobyard.domain.jobs import Job
from jobyard.domain.status import ACTIVE, TERMINAL, Status
from jobyard.engine import JobEngine
from jobyard.http.auth import caller
from jobyard.http.browse import BrowseFilters, browse_page, matching
from jobyard.http.face import HttpFace, Json
from jobyard.http.models import (
    BulkRequest,
    FindByStringId,
    JobsExtendRequestItem,
    JobSpecification,
    JobsSuspendRequestItem,
    JobsUnsuspendRequestItem,
)
from jobyard.http.views import job_view
from jobyard.runtime.capacity import host_memory_mb
from jobyard.store.base import JobQuery

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
UNFINISHED = frozenset(Status) - TERMINAL
MAX_SCAN = 1000  # unfinished jobs of one application and product compared for duplicates
Caller = Annotated[Identity, Depends(caller)]
MIB = 1024 * 1024


def face_of(request: Request) -> HttpFace:
    face: HttpFace = request.app.state.face
    return face


Face = Annotated[HttpFace, Depends(face_of)]


class IncludeFlags:
    """UCloud's JobIncludeFlags: which resolved parts a Job carries (updates always do,
    as the seed's retrieve shows with includeUpdates=false)."""

    def __init__(
        self,
        includeParameters: bool | None = None,
        includeApplication: bool | None = None,
        includeProduct: bool | None = None,
        includeSupport: bool | None = None,
        includeUpdates: bool | None = None,
        includeOthers: bool | None = None,
    ) -> None:
        self.parameters = bool(includeParameters)
        self.application = bool(includeApplication)
        self.product = bool(includeProduct)
        self.support = bool(includeSupport)


Flags = Annotated[IncludeFlags, Depends()]


def render(face: HttpFace, job: Job, flags: IncludeFlags, stored: Json | None) -> Json:
    resolved: Json = {}
    if flags.application or flags.product or flags.support:
        parts = face.planner.resolved(stored)
        if flags.application:
            resolved["resolvedApplication"] = parts.get("resolvedApplication")
        if flags.product:
            resolved["resolvedProduct"] = parts.get("resolvedProduct")
        if flags.support:
            resolved["resolvedSupport"] = parts.get("resolvedSupport")
    if flags.parameters and stored is not None:
        resolved["jobParametersJson"] = {"siteVersion": 3, "request": stored}
    return job_view(job, stored, resolved)


@router.post("", summary="Create jobs (bulk)")
async def create(body: BulkRequest[JobSpecification], who: Caller, face: Face) -> Json:
    """Every item is checked (catalog, parameters, limits) before any job is created."""
    authorize(who, "run_job")
    plans = [face.planner.plan(item) for item in body.items]
    for item, spec in zip(body.items, plans, strict=True):
        face.engine.prepare(spec, who)  # limits and capacity: refuse the lot before creating
        if not item.allowDuplicateJob:
            refuse_duplicate(face, who, item)
    responses = []
    for item, spec in zip(body.items, plans, strict=True):
        job = await face.engine.submit(who, spec)
        # TODO: store the specification in the job's own create transaction (a Store hook);
        # a crash right here leaves the job without it, and retrieve then derives it.
        face.specs.put(job.id, item.model_dump(mode="json"))
        responses.append({"id": job.id})
    return {"responses": responses}


def refuse_duplicate(face: HttpFace, who: Identity, item: JobSpecification) -> None:
    """UCloud's allowDuplicateJob=false: no second unfinished job of the caller with the
    same application, product, parameters and replicas (409 naming the first)."""
    same = {"application": item.application.model_dump(), "product": item.product.model_dump(),
            "parameters": item.parameters, "replicas": item.replicas}  # fmt: skip
    labels = {"ucloud.application": item.application.name, "ucloud.product": item.product.id}
    query = JobQuery(statuses=UNFINISHED, labels=labels, owner=who.name, page_size=MAX_SCAN)
    jobs, _ = face.engine.query(who, query)
    stored = face.specs.get_many(job.id for job in jobs)
    for job in jobs:
        spec = stored.get(job.id)
        if spec is not None and all(spec.get(key) == value for key, value in same.items()):
            raise FailedPrecondition(
                f"an identical job is already running: {job.id} "
                "(send allowDuplicateJob: true to run another)"
            )


@router.get("/retrieve", summary="Retrieve a job")
async def retrieve(
    who: Caller, face: Face, flags: Flags, id: Annotated[str, Query(max_length=64)]
) -> Json:
    job = face.job(who, id, "get_job")
    return render(face, job, flags, face.specs.get(job.id))


@router.get("/browse", summary="Browse jobs (paged, filtered)")
async def browse(
    who: Caller, face: Face, flags: Flags, filters: Annotated[BrowseFilters, Depends()]
) -> Json:
    authorize(who, "list_jobs")
    jobs, token = browse_page(face.engine, who, filters)
    stored = face.specs.get_many(job.id for job in jobs)
    items = [render(face, job, flags, stored.get(job.id)) for job in jobs]
    return {"itemsPerPage": filters.itemsPerPage, "items": items, "next": token or None}


@router.post("/extend", summary="Extend jobs' time allocation (bulk)")
async def extend(body: BulkRequest[JobsExtendRequestItem], who: Caller, face: Face) -> Json:
    jobs = [face.job(who, item.jobId, "extend_job") for item in body.items]
    if any(item.requestedTime.total_seconds <= 0 for item in body.items):
        raise InvalidArgument("invalid requestedTime: must be longer than 0 seconds")
    for item, job in zip(body.items, jobs, strict=True):
        await face.engine.extend(who, job.id, item.requestedTime.total_seconds)
    return _units(len(jobs))


@router.post("/terminate", summary="Terminate jobs (bulk)")
async def terminate(body: BulkRequest[FindByStringId], who: Caller, face: Face) -> Json:
    return await _each(who, face, [item.id for item in body.items], "stop_job", face.engine.stop)


@router.post("/suspend", summary="Suspend jobs (bulk)")
async def suspend(body: BulkRequest[JobsSuspendRequestItem], who: Caller, face: Face) -> Json:
    return await _each(
        who, face, [item.id for item in body.items], "suspend_job", face.engine.suspend
    )


@router.post("/unsuspend", summary="Unsuspend jobs (bulk)")
async def unsuspend(body: BulkRequest[JobsUnsuspendRequestItem], who: Caller, face: Face) -> Json:
    return await _each(
        who, face, [item.id for item in body.items], "resume_job", face.engine.resume
    )


async def _each(
    who: Identity,
    face: HttpFace,
    ids: list[str],
    operation: str,
    act: Callable[..., Awaitable[Any]],
) -> Json:
    """Resolve every job first (a bad id acts on none), then ``act`` on each in order."""
    jobs = [face.job(who, job_id, operation) for job_id in ids]
    for job in jobs:
        await act(who, job.id)
    return _units(len(jobs))


@router.get("/retrieveProducts", summary="The products jobs can run on, with their support")
async def retrieve_products(who: Caller, face: Face) -> Json:
    authorize(who, "list_jobs")
    return face.planner.products()


@router.get("/retrieveUtilization", summary="Capacity, what is in use, and the queue")
async def retrieve_utilization(
    who: Caller, face: Face, jobId: Annotated[str, Query(max_length=64)]
) -> Json:
    face.job(who, jobId, "get_job")  # the job's cluster: this server
    return utilization(face.engine)


def utilization(engine: JobEngine) -> Json:
    """JobsRetrieveUtilizationResponse: this server's capacity, what its active jobs hold,
    and how many run and wait (both UCloud faces answer this)."""
    running = matching(engine, ACTIVE)
    pending = matching(engine, frozenset({Status.QUEUED, Status.SCHEDULED}))
    return {
        "capacity": {"cpu": float(os.cpu_count() or 1), "memory": host_memory_mb() * MIB},
        "usedCapacity": {
            "cpu": sum(job.spec.resources.max_cpu for job in running) / 100,
            "memory": sum(job.spec.resources.max_memory for job in running) * MIB,
        },
        "queueStatus": {"running": len(running), "pending": len(pending)},
    }


def _units(count: int) -> Json:
    """BulkResponse<Unit>: ``{"responses": [{}, ...]}`` as the seed answers."""
    responses: list[Any] = [{} for _ in range(count)]
    return {"responses": responses}
