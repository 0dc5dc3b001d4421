"""A UCloud job specification (seed 001's create item) turned into jobyard's JobSpec.

Both UCloud faces use this: the end-user face with the catalog's application and product,
the provider face with what Core resolved. The result runs the application's invocation as
argv (no shell), bounded by the product, charged at its price.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import MAX_REPLICAS, MAX_TIME_LIMIT_SECONDS, JobSpec
from jobyard.ucloud.applications import Application, NameAndVersion
from jobyard.ucloud.catalog import Catalog
from jobyard.ucloud.invocation import check_backend, environment, render
from jobyard.ucloud.models import UcloudModel, invalid
from jobyard.ucloud.products import Product

MAX_PARAMETER_VALUES = 256


class ProductReference(UcloudModel):
    """``{id, category, provider}``: ``id`` is the product's name."""

    id: str = pydantic.Field(min_length=1, max_length=128)
    category: str = pydantic.Field(min_length=1, max_length=128)
    provider: str = pydantic.Field(default="", max_length=128)


class SimpleDuration(UcloudModel):
    hours: int = pydantic.Field(default=0, ge=0, le=MAX_TIME_LIMIT_SECONDS // 3600)
    minutes: int = pydantic.Field(default=0, ge=0, le=MAX_TIME_LIMIT_SECONDS // 60)
    seconds: int = pydantic.Field(default=0, ge=0, le=MAX_TIME_LIMIT_SECONDS)

    @property
    def total_seconds(self) -> int:
        return self.hours * 3600 + self.minutes * 60 + self.seconds


class JobSpecification(UcloudModel):
    """UCloud's JobSpecification, as a create request carries it (nulls as the seed sends)."""

    application: NameAndVersion
    product: ProductReference
    name: str | None = pydantic.Field(default=None, max_length=256)
    replicas: int = pydantic.Field(default=1, ge=1, le=MAX_REPLICAS)
    allow_duplicate_job: bool = False
    parameters: dict[str, Any] | None = pydantic.Field(
        default=None, max_length=MAX_PARAMETER_VALUES
    )
    resources: list[Any] | None = None
    time_allocation: SimpleDuration | None = None
    opened_file: str | None = None
    restart_on_exit: bool | None = None
    ssh_enabled: bool | None = None


def parse_specification(raw: Any, path: str = "specification") -> JobSpecification:
    """A create item, validated; errors name the key (``specification.replicas: ...``)."""
    try:
        return JobSpecification.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise invalid(exc, raw, path, what="invalid job") from None


def job_spec(
    specification: JobSpecification,
    application: Application,
    product: Product,
    *,
    name: str = "",
    labels: Mapping[str, str] | None = None,
) -> JobSpec:
    """The JobSpec that runs ``specification`` of ``application`` on ``product``.

    Refused (InvalidArgument): a tool backend other than NATIVE, bad or missing parameter
    values, several replicas of an application that does not allow multiple nodes, and the
    features jobyard does not offer (mounted resources, SSH, restart on exit).
    """
    check_backend(application)
    _check_features(specification, application)
    argv = render(application, specification.parameters)
    duration = specification.time_allocation
    spec = JobSpec(
        command=argv[0],
        args=tuple(argv[1:]),
        name=name,
        environment=environment(application, specification.parameters),
        resources=product.resources(),
        time_limit_seconds=float(duration.total_seconds) if duration else 0.0,
        replicas=specification.replicas,
        labels=dict(labels or {}),
        product=product.ref,
    )
    spec.validate()
    return spec


def catalog_job_spec(
    catalog: Catalog, specification: JobSpecification, **kwargs: Any
) -> tuple[JobSpec, Application, Product]:
    """:func:`job_spec` with the application and product looked up in ``catalog``."""
    app = catalog.application(specification.application.name, specification.application.version)
    ref = specification.product
    product = catalog.product(ref.id, ref.category, ref.provider)
    return job_spec(specification, app, product, **kwargs), app, product


def _check_features(specification: JobSpecification, application: Application) -> None:
    duration = specification.time_allocation
    if duration is not None and duration.total_seconds > MAX_TIME_LIMIT_SECONDS:
        raise InvalidArgument(
            f"invalid job: timeAllocation exceeds the maximum of {MAX_TIME_LIMIT_SECONDS} s"
        )
    if specification.replicas > 1 and not application.invocation.allow_multi_node:
        raise InvalidArgument(
            f"invalid job: application {application.name} {application.version} runs on one "
            f"node only (allowMultiNode is false); replicas must be 1"
        )
    if specification.resources:
        raise InvalidArgument("invalid job: resources (mounts, peers, ...) are not supported")
    if specification.ssh_enabled:
        raise InvalidArgument("invalid job: sshEnabled is not supported by this provider")
    if specification.restart_on_exit:
        raise InvalidArgument("invalid job: restartOnExit is not supported by this provider")


__all__ = [
    "JobSpecification",
    "ProductReference",
    "SimpleDuration",
    "catalog_job_spec",
    "job_spec",
    "parse_specification",
]
