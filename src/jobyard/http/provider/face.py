"""What the provider face works with: the engine, Core's ids, the relay to Core, and the
translation of Core's resolved Job into a native JobSpec (:mod:`jobyard.ucloud.jobs`, the
same translation the end-user face uses: invocation to argv, product limits, NATIVE only).

A job Core created is owned by its UCloud creator (``owner.createdBy``, ``owner.project``):
on jobyard's other faces the identity of that name (and that project's members) sees it,
as do those Core's ACL names. Core's id is kept as the job's ``ucloud.jobId`` label (its
ranks read it in ``/etc/ucloud/job_id.txt``) and in the mapping table, so every later call
that names Core's Job finds it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import pydantic

from jobyard.domain.access import SYSTEM, Identity, Role
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import RANK_JOB_ID_LABEL, Job, JobSpec
from jobyard.engine import JobEngine
from jobyard.http.provider.models import CoreJob
from jobyard.http.provider.relay import CoreRelay
from jobyard.store.provider import SQLiteProviderStore
from jobyard.store.tokens import SQLiteTokens
from jobyard.store.ucloud_specs import SQLiteUcloudSpecs
from jobyard.ucloud import Application, Catalog, Product, UcloudConfig
from jobyard.ucloud.jobs import job_spec, parse_specification
from jobyard.ucloud.models import invalid

_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """A create item, checked: who owns it and what runs."""

    core_id: str
    owner: Identity
    spec: JobSpec
    specification: dict[str, Any]  # as Core sent it: the end-user face shows it back


@dataclasses.dataclass
class ProviderFace:
    engine: JobEngine
    tokens: SQLiteTokens
    store: SQLiteProviderStore
    relay: CoreRelay
    config: UcloudConfig
    specs: SQLiteUcloudSpecs

    @functools.cached_property
    def catalog(self) -> Catalog:
        return Catalog.of(self.config)

    def plan(self, job: CoreJob, path: str) -> Plan:
        """The native job of Core's ``job`` (InvalidArgument naming the key if it cannot
        run here: a DOCKER or VIRTUAL_MACHINE tool, a product this provider does not offer,
        bad parameters)."""
        if job.specification is None or job.status is None or job.owner is None:
            raise InvalidArgument(
                f"invalid job: {path}: owner, specification and status (with "
                "resolvedApplication and resolvedProduct) are required"
            )
        specification = parse_specification(job.specification, f"{path}.specification")
        application = _resolved(Application, job.status.resolvedApplication,
                                f"{path}.status.resolvedApplication")  # fmt: skip
        product = _resolved(Product, job.status.resolvedProduct, f"{path}.status.resolvedProduct")
        ref = product.ref
        self.catalog.product(ref.id, ref.category, ref.provider)  # offered here (and priced)
        name = specification.name or ""
        app = specification.application
        labels = {RANK_JOB_ID_LABEL: job.id, "ucloud.application": app.name,
                  "ucloud.version": app.version, "ucloud.product": ref.id,
                  "ucloud.category": ref.category, "ucloud.provider": ref.provider}  # fmt: skip
        spec = job_spec(specification, application, product,
                        name=name if _JOB_NAME.fullmatch(name) else "", labels=labels)  # fmt: skip
        owner = Identity(job.owner.createdBy, Role.USER, job.owner.project or "")
        return Plan(job.id, owner, spec, specification.model_dump(mode="json", by_alias=True))

    def existing(self, core_id: str) -> Job | None:
        """The job Core's ``core_id`` names, if it was created (a retried create)."""
        found = self.store.by_core_id(core_id)
        if found is None:
            return None
        try:
            return self.engine.job(SYSTEM, found.job_id)
        except NotFound:
            self.store.forget(core_id)  # mapped, but the job never made it (a crash)
            return None

    def job(self, core: CoreJob) -> Job:
        """The job of Core's Job (by Core's id); NotFound if jobyard does not know it."""
        found = self.store.by_core_id(core.id)
        if found is None:
            raise NotFound(f"job not found: {core.id} (unknown to this provider)")
        return self.engine.job(SYSTEM, found.job_id)


def owner_of(job: Job) -> Identity:
    """The identity Core's calls act as on a job: its owner's."""
    return Identity(job.owner, Role.USER, job.project)


def _resolved(model: Any, raw: dict[str, Any] | None, path: str) -> Any:
    if raw is None:
        raise InvalidArgument(f"invalid job: {path} is required")
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise invalid(exc, raw, path, what="invalid job") from None


__all__ = ["Plan", "ProviderFace", "owner_of"]
