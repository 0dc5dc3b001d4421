"""The ingoing provider API for Jobs (seed 000), at ``/ucloud/{providerId}/jobs...``.

Only UCloud/Core's service account (a ``ucloud``-role token) is served: no token is a 401,
any other role a 403 (:func:`jobyard.domain.access.authorize`, operation
``ucloud_provider``). A providerId other than this server's is a 404. Bulk calls check
every item before acting on any, and answer one response per item.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from jobyard.domain.access import Identity, authorize, principal
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from jobyard.domain.jobs import new_job_id
from jobyard.http.auth import caller
from jobyard.http.jobs import utilization
from jobyard.http.planner import support
from jobyard.http.provider.face import ProviderFace, owner_of
from jobyard.http.provider.models import (
    CORE_ID,
    AclEntity,
    CoreJob,
    ExtendItem,
    JobItem,
    ProviderBulk,
    UpdatedAcl,
    UtilizationRequest,
)

Json = dict[str, Any]
router = APIRouter(prefix="/ucloud/{providerId}/jobs", tags=["provider"])
NOT_SUPPORTED = "interactive sessions (terminal, web, VNC) are not supported by this provider"


def provider_face(
    request: Request, providerId: Annotated[str, Path(pattern=CORE_ID)]
) -> ProviderFace:
    face: ProviderFace | None = getattr(request.app.state, "provider", None)
    if face is None or providerId != face.config.provider_id:
        raise NotFound(f"unknown provider {providerId!r}")
    return face


def core(who: Annotated[Identity, Depends(caller)]) -> Identity:
    """The caller, if it is UCloud/Core's service account (else 403)."""
    authorize(who, "ucloud_provider")
    return who


Face = Annotated[ProviderFace, Depends(provider_face)]
Core = Annotated[Identity, Depends(core)]


@router.post("", summary="Create jobs Core resolved (bulk); answers providerGeneratedId")
async def create(body: ProviderBulk[CoreJob], who: Core, face: Face) -> Json:
    plans = [face.plan(item, f"items[{i}]") for i, item in enumerate(body.items)]
    for plan in plans:  # limits and capacity: refuse the lot before creating any
        face.engine.prepare(plan.spec, plan.owner)
    responses = []
    for plan in plans:
        job = face.existing(plan.core_id)
        if job is None:
            job_id = new_job_id()
            face.store.add(plan.core_id, job_id)  # before the job can change: the relay sees all
            try:
                job = await face.engine.submit(plan.owner, plan.spec, job_id=job_id)
            except BaseException:
                face.existing(plan.core_id)  # forgets the mapping if no job was created
                raise
            face.specs.put(job.id, plan.specification)
            face.relay.record(face.engine.job(owner_of(job), job.id))
        responses.append({"id": job.id})
    return {"responses": responses}


@router.get("/retrieveProducts", summary="ComputeSupport of every product (bulk)")
async def retrieve_products(who: Core, face: Face) -> Json:
    maintenance = face.config.maintenance
    state = None if maintenance is None else maintenance.wire()
    return {"responses": [support(product, state) for product in face.catalog.products]}


@router.post("/extend", summary="Extend jobs' time allocation (bulk)")
async def extend(body: ProviderBulk[ExtendItem], who: Core, face: Face) -> Json:
    jobs = [face.job(item.job) for item in body.items]
    if any(item.requestedTime.total_seconds <= 0 for item in body.items):
        raise InvalidArgument("invalid requestedTime: must be longer than 0 seconds")
    for item, job in zip(body.items, jobs, strict=True):
        await face.engine.extend(owner_of(job), job.id, item.requestedTime.total_seconds)
    return _units(len(jobs))


@router.post("/terminate", summary="Terminate jobs (bulk); an ended job stays as it is")
async def terminate(body: ProviderBulk[CoreJob], who: Core, face: Face) -> Json:
    jobs = [face.job(item) for item in body.items]
    for job in jobs:
        with contextlib.suppress(FailedPrecondition):  # it ended already: nothing to do
            await face.engine.stop(owner_of(job), job.id)
    return _units(len(jobs))


@router.post("/suspend", summary="Suspend jobs (bulk)")
async def suspend(body: ProviderBulk[JobItem], who: Core, face: Face) -> Json:
    jobs = [face.job(item.job) for item in body.items]
    for job in jobs:
        await face.engine.suspend(owner_of(job), job.id)
    return _units(len(jobs))


@router.post("/unsuspend", summary="Unsuspend jobs (bulk)")
async def unsuspend(body: ProviderBulk[JobItem], who: Core, face: Face) -> Json:
    jobs = [face.job(item.job) for item in body.items]
    for job in jobs:
        await face.engine.resume(owner_of(job), job.id)
    return _units(len(jobs))


@router.post("/verify", summary="Core's active jobs: unknown ones get FAILURE (bulk)")
async def verify(body: ProviderBulk[CoreJob], who: Core, face: Face) -> Json:
    for item in body.items:
        face.relay.verify(item.id)
    return {}


@router.post("/retrieveUtilization", summary="Capacity, what is in use, and the queue")
async def retrieve_utilization(body: UtilizationRequest, who: Core, face: Face) -> Json:
    return utilization(face.engine)


@router.post("/interactiveSession", summary="Interactive sessions: not supported (400)")
async def interactive_session(who: Core, face: Face) -> Json:
    raise InvalidArgument(NOT_SUPPORTED)


@router.post("/updateAcl", summary="Core's permission changes of jobs (bulk)")
async def update_acl(body: ProviderBulk[UpdatedAcl], who: Core, face: Face) -> Json:
    """Who else sees each job on jobyard's other faces: the users and projects Core's ACL
    names (a project group is its whole project: jobyard has no groups); READ lets them
    see it, EDIT or ADMIN act on it too."""
    # An entry added again replaces what its entity had (its permissions changed).
    changes = [
        ({principal_of(e.entity, edit=bool(EDITING & set(e.permissions))) for e in item.added},
         {name for e in [*item.deleted, *(a.entity for a in item.added)]
          for name in (principal_of(e), principal_of(e, edit=True))})
        for item in body.items
    ]  # fmt: skip
    for item, (added, dropped) in zip(body.items, changes, strict=True):
        try:
            job = face.job(item.resource)
        except NotFound:  # a job jobyard never ran: nothing to apply, still acknowledged
            continue
        face.engine.share(job.id, (set(job.shared_with) - dropped) | added)
    return _units(len(body.items))


EDITING = frozenset({"EDIT", "ADMIN"})


def principal_of(entity: AclEntity, *, edit: bool = False) -> str:
    """An ACL entity as a job's sharing principal (:func:`jobyard.domain.access.principal`)."""
    if entity.type == "user" and entity.username:
        return principal("user", entity.username, edit=edit)
    if entity.type == "project_group" and entity.projectId:
        return principal("project", entity.projectId, edit=edit)
    raise InvalidArgument(
        f"invalid ACL entity: type {entity.type[:32]!r} with its name (user: username; "
        "project_group: projectId) is required"
    )


@router.post("/init", summary="Initialize a workspace's resources (idempotent)")
async def init(who: Core, face: Face) -> Json:
    return {}


def _units(count: int) -> Json:
    responses: list[Any] = [{} for _ in range(count)]
    return {"responses": responses}


__all__ = ["NOT_SUPPORTED", "router"]
