"""From a UCloud JobSpecification to the native JobSpec (:mod:`jobyard.ucloud.jobs`: the
catalog's product and application, the invocation rendered to argv, never shell text), and
the catalog's products with what this provider supports."""

from __future__ import annotations

from typing import Any

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec
from jobyard.http.face import Json
from jobyard.http.models import JobSpecification
from jobyard.ucloud import Catalog, Product, UcloudConfig
from jobyard.ucloud.jobs import catalog_job_spec, parse_specification

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
        """The catalog's application and product (ucloud.jobs, shared with the provider
        face), with labels that name them on every face (`jobyard status`, filters)."""
        if request.openedFile:
            raise InvalidArgument("invalid job: openedFile is not supported by this provider")
        specification = parse_specification(request.model_dump(mode="json"))
        app, ref = request.application, request.product
        labels = {"ucloud.application": app.name, "ucloud.version": app.version,
                  "ucloud.product": ref.id, "ucloud.category": ref.category,
                  "ucloud.provider": ref.provider}  # fmt: skip
        spec, _, _ = catalog_job_spec(
            self._catalog, specification, name=request.name or "", labels=labels
        )
        return spec

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
