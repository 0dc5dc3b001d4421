"""Who may do what, and who sees which jobs: the one role table and owner scoping.

Every face (gRPC today, HTTP next) turns its credentials into an :class:`Identity` and then
asks this module; none decides access itself. Pure: no gRPC, no I/O.

Roles (SPEC.md §2):

- ``admin``: every operation on every job;
- ``viewer``: read-only operations on every job;
- ``user``: runs jobs and workflows, and sees and acts only on its own (owner = its name)
  and on its project's (when it has a project);
- ``ucloud``: the UCloud/Core service account, on the provider face only: ``ucloud_provider``
  is the one operation of this table open to it (and to no other role).

A job or workflow the caller may not see is answered exactly as an absent one (NotFound),
so that its existence does not leak.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

from jobyard.domain.errors import PermissionDenied


class Role(enum.StrEnum):
    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"
    UCLOUD = "ucloud"


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: ``name`` owns what it submits, ``project`` ("" = none) is
    shared with the other members of the project."""

    name: str
    role: Role
    project: str = ""


class Owned(Protocol):
    """Anything with an owner and a project: jobs, workflows."""

    @property
    def owner(self) -> str: ...

    @property
    def project(self) -> str: ...


_ANYONE = frozenset({Role.ADMIN, Role.USER, Role.VIEWER})  # reads, scoped by `visible`
_ACTORS = frozenset({Role.ADMIN, Role.USER})  # changes, scoped by `visible`

# operation -> roles allowed to perform it. The one place authorization is decided; which
# jobs an allowed caller reaches is `visible`'s.
ROLE_TABLE: dict[str, frozenset[Role]] = {
    "run_job": _ACTORS,
    "get_job_status": _ANYONE,
    "stop_job": _ACTORS,
    "list_jobs": _ANYONE,
    "get_job_logs": _ANYONE,
    "run_workflow": _ACTORS,
    "get_workflow_status": _ANYONE,
    "list_workflows": _ANYONE,
    "get_workflow_jobs": _ANYONE,
    # jobyard.v1
    "get_job": _ANYONE,
    "delete_job": _ACTORS,
    "suspend_job": _ACTORS,
    "resume_job": _ACTORS,
    "extend_job": _ACTORS,
    "watch_jobs": _ANYONE,
    "read_logs": _ANYONE,
    "list_files": _ANYONE,
    "download_file": _ANYONE,
    "stop_workflow": _ACTORS,
    # wallets (the HTTP face's GET /api/accounting/wallets; users see their own)
    "list_wallets": _ANYONE,
    # joblet.MonitoringService: the host as a whole, so not for users scoped to their jobs
    "get_system_status": frozenset({Role.ADMIN, Role.VIEWER}),
    "stream_system_metrics": frozenset({Role.ADMIN, Role.VIEWER}),
    # the server's Prometheus metrics (HTTP GET /metrics): counts over every owner's jobs
    "read_metrics": frozenset({Role.ADMIN, Role.VIEWER}),
    # joblet.VolumeService: volumes are owned and scoped like jobs
    "create_volume": _ACTORS,
    "list_volumes": _ANYONE,
    "remove_volume": _ACTORS,
    # joblet.NetworkService: networks are owned and scoped like jobs
    "create_network": _ACTORS,
    "list_networks": _ANYONE,
    "remove_network": _ACTORS,
    # joblet.RuntimeService: runtimes are the host's, installed by admins, usable by all
    "install_runtime": frozenset({Role.ADMIN}),
    "list_runtimes": _ANYONE,
    "get_runtime_info": _ANYONE,
    "test_runtime": frozenset({Role.ADMIN}),
    "remove_runtime": frozenset({Role.ADMIN}),
    # The UCloud provider face (/ucloud/{providerId}/...): UCloud/Core's service account only
    "ucloud_provider": frozenset({Role.UCLOUD}),
}

# Roles that see every job; the others see only what `Scope` admits.
_SEE_ALL = frozenset({Role.ADMIN, Role.VIEWER})


def authorize(identity: Identity, operation: str) -> None:
    """Raise PermissionDenied unless ``identity``'s role may perform ``operation``.

    An operation missing from the table is refused: new operations are closed by default.
    """
    if identity.role not in ROLE_TABLE.get(operation, frozenset()):
        raise PermissionDenied(
            f"role {identity.role} is not allowed to perform operation {operation}"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """What a scoped caller sees: its own jobs, and its project's when it has one.

    Stores use it as a query filter (``owner = ? OR project = ?``), so that lists and
    pages never hold what the caller may not see.
    """

    owner: str
    project: str = ""

    def admits(self, item: Owned) -> bool:
        if item.owner == self.owner or (bool(self.project) and item.project == self.project):
            return True
        # Jobs can be shared (to see them, or to act on them too); workflows are not.
        shared = getattr(item, "shared_with", ())
        return bool(shared) and any(name in shared for name in self.principals(edit=False))

    def may_change(self, item: Owned) -> bool:
        """Whether the caller may act on ``item`` (stop, suspend, extend...), not only see
        it: its owner, its project's members, and those it is shared with to edit."""
        if item.owner == self.owner or (bool(self.project) and item.project == self.project):
            return True
        shared = getattr(item, "shared_with", ())
        return bool(shared) and any(name in shared for name in self.principals(edit=True))

    def principals(self, *, edit: bool) -> list[str]:
        """The sharing principals that stand for this caller (to see: either kind)."""
        kinds = [("user", self.owner)] + ([("project", self.project)] if self.project else [])
        out = [principal(kind, name, edit=True) for kind, name in kinds]
        if not edit:
            out += [principal(kind, name) for kind, name in kinds]
        return out


MAX_SHARES = 256


def principal(kind: str, name: str, *, edit: bool = False) -> str:
    """An entry of :attr:`Job.shared_with`: ``user:NAME`` or ``project:NAME`` sees the job;
    ``user+edit:NAME`` / ``project+edit:NAME`` also acts on it."""
    if kind not in ("user", "project"):
        raise ValueError(f"unknown principal kind {kind!r}")
    return f"{kind}+edit:{name}" if edit else f"{kind}:{name}"


def may_change(identity: Identity, item: Owned) -> bool:
    """Whether ``identity`` may act on ``item`` it can see (admins: every job)."""
    limits = scope(identity)
    return limits is None or limits.may_change(item)


def scope(identity: Identity) -> Scope | None:
    """The caller's scope, or None when it sees everything (admin, viewer)."""
    if identity.role in _SEE_ALL:
        return None
    return Scope(owner=identity.name, project=identity.project)


def visible(identity: Identity, item: Owned) -> bool:
    """Whether ``identity`` may see ``item`` (a job or a workflow) at all."""
    limits = scope(identity)
    return limits is None or limits.admits(item)


# The engine's own actions (a workflow stopping its jobs) act with this identity.
SYSTEM = Identity(name="jobyard", role=Role.ADMIN)

__all__ = [
    "MAX_SHARES",
    "ROLE_TABLE",
    "SYSTEM",
    "Identity",
    "Owned",
    "Role",
    "Scope",
    "authorize",
    "may_change",
    "principal",
    "scope",
    "visible",
]
