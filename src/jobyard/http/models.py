"""Request bodies of the end-user Jobs API, as UCloud defines them (typed: OpenAPI and
validation come from these). Every string, list and number is bounded."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from jobyard.domain.jobs import MAX_REPLICAS, MAX_TIME_LIMIT_SECONDS

MAX_BULK_ITEMS = 100
MAX_PARAMETERS = 256
MAX_RESOURCES = 64

Name = Annotated[str, Field(min_length=1, max_length=256)]
JobId = Annotated[str, Field(min_length=1, max_length=64)]
Hours = Annotated[int, Field(ge=0, le=MAX_TIME_LIMIT_SECONDS // 3600)]
Minutes = Annotated[int, Field(ge=0, le=MAX_TIME_LIMIT_SECONDS // 60)]
Seconds = Annotated[int, Field(ge=0, le=MAX_TIME_LIMIT_SECONDS)]

T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NameAndVersion(Strict):
    name: Name
    version: Annotated[str, Field(max_length=256)]


class ProductReference(Strict):
    id: Name
    category: Name
    provider: Name


class SimpleDuration(Strict):
    hours: Hours = 0
    minutes: Minutes = 0
    seconds: Seconds = 0

    @property
    def total_seconds(self) -> int:
        return self.hours * 3600 + self.minutes * 60 + self.seconds


class JobSpecification(Strict):
    """What to run: an application of the catalog on a product, with its parameters."""

    application: NameAndVersion
    product: ProductReference
    name: Annotated[str, Field(max_length=128)] | None = None
    replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = 1
    allowDuplicateJob: bool = False
    parameters: Annotated[dict[str, Any], Field(max_length=MAX_PARAMETERS)] | None = None
    resources: Annotated[list[Any], Field(max_length=MAX_RESOURCES)] | None = None
    timeAllocation: SimpleDuration | None = None
    openedFile: Annotated[str, Field(max_length=4096)] | None = None
    restartOnExit: bool | None = None
    sshEnabled: bool | None = None


class BulkRequest(Strict, Generic[T]):
    items: Annotated[list[T], Field(min_length=1, max_length=MAX_BULK_ITEMS)]


class FindByStringId(Strict):
    id: JobId


class JobsExtendRequestItem(Strict):
    jobId: JobId
    requestedTime: SimpleDuration


class JobsSuspendRequestItem(Strict):
    id: JobId


class JobsUnsuspendRequestItem(Strict):
    id: JobId
