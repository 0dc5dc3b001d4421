"""Request bodies UCloud/Core sends the provider face (seed 000), typed for validation and
OpenAPI. Core's Job carries much jobyard does not use: unknown keys are kept, not refused,
so a newer Core still talks to this face; every string and list jobyard reads is bounded."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from jobyard.http.models import MAX_BULK_ITEMS, SimpleDuration

T = TypeVar("T")
CORE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
CoreId = Annotated[str, Field(pattern=CORE_ID)]
MAX_ACL_ENTRIES = 256


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResourceOwner(Lenient):
    createdBy: Annotated[str, Field(min_length=1, max_length=256)]
    project: Annotated[str, Field(max_length=256)] | None = None


class CoreJobStatus(Lenient):
    state: str | None = None
    resolvedApplication: dict[str, Any] | None = None
    resolvedProduct: dict[str, Any] | None = None


class CoreJob(Lenient):
    """UCloud's Job as Core sends it (create: resolved; other calls: at least its id)."""

    id: CoreId
    owner: ResourceOwner | None = None
    specification: dict[str, Any] | None = None
    status: CoreJobStatus | None = None
    providerGeneratedId: Annotated[str, Field(max_length=128)] | None = None


class ProviderBulk(Lenient, Generic[T]):
    items: Annotated[list[T], Field(min_length=1, max_length=MAX_BULK_ITEMS)]


class ExtendItem(Lenient):
    job: CoreJob
    requestedTime: SimpleDuration


class JobItem(Lenient):
    """JobsProviderSuspendRequestItem / JobsProviderUnsuspendRequestItem."""

    job: CoreJob


class AclEntity(Lenient):
    """``{type: "user", username}`` or ``{type: "project_group", projectId, group}``."""

    type: Annotated[str, Field(max_length=32)]
    username: Annotated[str, Field(max_length=256)] | None = None
    projectId: Annotated[str, Field(max_length=256)] | None = None
    group: Annotated[str, Field(max_length=256)] | None = None


class AclEntry(Lenient):
    entity: AclEntity
    permissions: Annotated[list[str], Field(max_length=16)] = []


class UpdatedAcl(Lenient):
    """UpdatedAclWithResource<Job>."""

    resource: CoreJob
    added: Annotated[list[AclEntry], Field(max_length=MAX_ACL_ENTRIES)] = []
    deleted: Annotated[list[AclEntity], Field(max_length=MAX_ACL_ENTRIES)] = []


class UtilizationRequest(Lenient):
    categoryId: Annotated[str, Field(max_length=128)] = ""


__all__ = [
    "AclEntity",
    "AclEntry",
    "CoreJob",
    "CoreJobStatus",
    "ExtendItem",
    "JobItem",
    "ProviderBulk",
    "ResourceOwner",
    "UpdatedAcl",
    "UtilizationRequest",
]
