"""From a UCloud JobSpecification to the native JobSpec: the catalog's product and
application, the invocation rendered to argv (separate entries, never shell text), the time
allocation as the time limit, the product's cpu and memory as the job's limits."""

from __future__ import annotations

from typing import Any

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec
from jobyard.http.face import Json
from jobyard.http.models import JobSpecification
from jobyard.ucloud import Catalog, Product, UcloudConfig, check_backend, render

# What jobyard's native backends do for a job (ComputeSupport, as seed 000 shows it).
_NATIVE_SUPPORT = {"enabled": True, "logs": True, "vnc": False, "terminal": False,
                   "timeExtension": True, "utilization": True, "web": False}  # fmt: skip
_DOCKER_OFF = dict.fromkeys(("enabled", "web", "vnc", "logs", "terminal", "peers",
                             "timeExtension", "utilization"), False)  # fmt: skip
_VM_OFF = dict.fromkeys(("enabled", "logs", "vnc", "terminal", "timeExtension", "suspension",
                         "utilization"), False)  # fmt: skip


def support(product: Product, maintenance: Json | None = None) -> Json:
    """ComputeSupport of ``product``: true only for what works (native jobs)."""
    ref = product.ref
    return {
        "product": {"id": ref.id, "category": ref.category, "provider": ref.provider},
        "docker": dict(_DOCKER_OFF),
        "virtualMachine": dict(_VM_OFF),
        "native": dict(_NATIVE_SUPPORT),
        "maintenance": maintenance,
    }


class NoCatalog:
    """The planner of a server with no ``ucloud:`` section: nothing can be created."""

    def plan(self, request: JobSpecification) -> JobSpec:
        raise InvalidArgument(
            f"unknown application {request.application.name} {request.application.version}: "
            "this server has no ucloud applications configured"
        )

    def resolved(self, stored: Json | None) -> Json:
        return {}

    def products(self) -> Json:
        return {"productsByProvider": {}}


class CatalogPlanner:
    """Plans jobs from the ``ucloud:`` section's products and applications."""

    def __init__(self, config: UcloudConfig) -> None:
        self._config = config
        self._catalog = Catalog.of(config)

    def plan(self, request: JobSpecification) -> JobSpec:
        ref = request.product
        product = self._catalog.product(ref.id, ref.category, ref.provider)
        application = self._catalog.application(
            request.application.name, request.application.version
        )
        check_backend(application)
        _refuse_unsupported(request)
        argv = render(application, request.parameters)
        allocation = request.timeAllocation
        return JobSpec(
            command=argv[0],
            args=tuple(argv[1:]),
            name=request.name or "",
            resources=product.resources(),
            time_limit_seconds=0 if allocation is None else allocation.total_seconds,
            replicas=request.replicas,
            labels={
                "ucloud.application": application.name,
                "ucloud.version": application.version,
                "ucloud.product": product.name,
                "ucloud.category": product.category.name,
                "ucloud.provider": product.category.provider,
            },
            product=product.ref,
        )

    def resolved(self, stored: Json | None) -> Json:
        """The catalog's application and product of a stored specification (null when the
        job has none, or they are no longer offered)."""
        if stored is None:
            return {}
        out: Json = {}
        app, ref = stored.get("application") or {}, stored.get("product") or {}
        try:
            application = self._catalog.application(app.get("name", ""), app.get("version", ""))
            out["resolvedApplication"] = application.wire()
        except InvalidArgument:
            pass
        try:
            product = self._catalog.product(ref.get("id", ""), ref.get("category", ""))
            out["resolvedProduct"] = product.wire()
            out["resolvedSupport"] = support(product, self._maintenance())
        except InvalidArgument:
            pass
        return out

    def products(self) -> Json:
        offered = [
            {"product": p.wire(), "support": support(p, self._maintenance())}
            for p in self._catalog.products
        ]
        return {"productsByProvider": {self._config.provider_id: offered}}

    def _maintenance(self) -> Json | None:
        maintenance: Any = self._config.maintenance
        return None if maintenance is None else maintenance.wire()


def _refuse_unsupported(request: JobSpecification) -> None:
    """What this provider cannot do is refused, never silently ignored."""
    unsupported = [
        name
        for name, value in (
            ("resources", request.resources),
            ("openedFile", request.openedFile),
            ("restartOnExit", request.restartOnExit),
            ("sshEnabled", request.sshEnabled),
        )
        if value
    ]
    if unsupported:
        raise InvalidArgument(
            f"not supported by this provider: {', '.join(unsupported)} (send null or leave out)"
        )
