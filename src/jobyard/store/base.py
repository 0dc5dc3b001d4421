"""The Store port: durable job records and their history.

Every status change goes through :meth:`Store.transition`, a compare-and-set against the
domain's transition table, so concurrent actors (an exit racing a stop) cannot both win.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Awaitable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from jobyard.domain.access import Scope
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import Job, looks_like_id_prefix
from jobyard.domain.requests import Claimed, RequestKey
from jobyard.domain.status import Status
from jobyard.domain.workflows import WorkflowRecord, WorkflowStatus

# Fields a transition may set besides the status itself.
MUTABLE_FIELDS = frozenset(
    {
        "reason", "exit_code", "started_at", "ended_at", "backend_id", "message", "backend",
        "expires_at", "usage", "suspended_seconds", "suspended_at", "time_limit_seconds",
        "shared_with",
    }
)  # fmt: skip
# Mutable fields that live in the job's spec (extend grows the time limit, as UCloud's
# timeAllocation).
SPEC_FIELDS = frozenset({"time_limit_seconds"})
MIN_PREFIX_CHARS = 4


class Store(Protocol):
    def create(self, job: Job, request: RequestKey | None = None) -> None:
        """Record a new job (and its first history entry), durable once :meth:`committed`
        says so; with ``request``, record its request id with it, in the same transaction
        (DuplicateRequest, at once, if an unexpired use of that id exists)."""
        ...

    def committed(self) -> Awaitable[None]:
        """Done once every change made so far (before this call) is durable: it survives
        a ``kill -9``. Await it before answering what promises durability.

        Changes take effect at once for every reader of the store; only durability waits.
        Raises StoreError when the database did not take them.
        """
        ...

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        """The unexpired use of request id ``key`` by ``owner`` (jobs and workflows share
        the ids of one owner)."""
        ...

    def get(self, job_id: str) -> Job:
        """The job with exactly this id; raises NotFound."""
        ...

    def ids_with_prefix(self, prefix: str, limit: int, scope: Scope | None = None) -> list[str]:
        """Ids starting with ``prefix``, oldest first, only of the jobs ``scope`` admits."""
        ...

    def list(self, statuses: Iterable[Status] | None = None, limit: int | None = None) -> list[Job]:
        """Jobs, oldest first, optionally only those in ``statuses``, at most ``limit``."""
        ...

    def transition(self, job_id: str, new: Status, message: str, **fields: Any) -> Job:
        """Move the job to ``new`` if the table allows it from its current status.

        Raises StaleTransition (current status in the message) when it does not, NotFound
        when there is no such job. Appends a history entry with ``message``.
        """
        ...

    def update(self, job_id: str, **fields: Any) -> Job:
        """Set non-status fields (e.g. ``backend_id``) without a history entry."""
        ...

    def annotate(
        self, job_id: str, message: str, *, only_in: Iterable[Status], **fields: Any
    ) -> Job:
        """Set non-status fields and append a history entry (current status, ``message``).

        Compare-and-set like :meth:`transition`: raises StaleTransition unless the job's
        status is one of ``only_in``. The job's ``message`` (latest status change) is kept.
        """
        ...

    def query(self, query: JobQuery) -> tuple[builtins.list[Job], str]:
        """Jobs matching ``query``, newest first, and the token of the next page ("")."""
        ...

    def delete(self, job_id: str) -> None:
        """Remove the job and its history."""
        ...

    def close(self) -> None: ...


class WorkflowStore(Protocol):
    """Workflows and the place of each of their jobs (one record per RunWorkflow)."""

    def create(self, record: WorkflowRecord, request: RequestKey | None = None) -> None:
        """Persist a new workflow and all its job rows in one durable transaction (with its
        request id, as :meth:`Store.create`)."""
        ...

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None: ...

    def get(self, workflow_id: str) -> WorkflowRecord:
        """The workflow with exactly this id; raises NotFound."""
        ...

    def ids_with_prefix(
        self, prefix: str, limit: int, scope: Scope | None = None
    ) -> builtins.list[str]:
        """Ids starting with ``prefix``, oldest first, only of those ``scope`` admits."""
        ...

    def list(
        self, *, unfinished_only: bool = False, scope: Scope | None = None
    ) -> builtins.list[WorkflowRecord]:
        """Workflows, oldest first (only unfinished ones; only those ``scope`` admits)."""
        ...

    def set_job(
        self, workflow_id: str, name: str, *, job_id: str | None, status: str, reason: str | None
    ) -> None:
        """Record a workflow job's job (once created) or why it never got one."""
        ...

    def finish(self, workflow_id: str, status: WorkflowStatus) -> None:
        """End the workflow with ``status``, unless it has ended already."""
        ...


class HasIds(Protocol):
    """What :func:`resolve_id` needs of a store."""

    def ids_with_prefix(
        self, prefix: str, limit: int, scope: Scope | None = None
    ) -> builtins.list[str]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters for listing jobs; every given filter must match."""

    statuses: frozenset[Status] = frozenset()
    name: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    owner: str = ""
    workflow_id: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    page_size: int = 100
    page_token: str = ""  # opaque: the seq of the last job of the previous page
    scope: Scope | None = None  # the caller's (domain/access.py); None: every job

    def matches(self, job: Job) -> bool:
        return (
            (self.scope is None or self.scope.admits(job))
            and (not self.statuses or job.status in self.statuses)
            and (not self.name or job.name == self.name)
            and all(job.spec.labels.get(k) == v for k, v in self.labels.items())
            and (not self.owner or job.owner == self.owner)
            and (not self.workflow_id or job.workflow_id == self.workflow_id)
            and (self.created_after is None or job.created_at > self.created_after)
            and (self.created_before is None or job.created_at < self.created_before)
        )

    def after_seq(self) -> int | None:
        if not self.page_token:
            return None
        try:
            return int(self.page_token)
        except ValueError:
            raise InvalidArgument(f"invalid page token {self.page_token!r}") from None


def resolve_id(store: HasIds, ref: str, kind: str = "job", scope: Scope | None = None) -> str:
    """Map a full id or a unique prefix (at least 4 characters) of a ``kind`` ("job" or
    "workflow") to its id. Unknown ids answer NotFound ("job not found: ID").

    With ``scope`` (the caller's) only what it admits is matched: another owner's job or
    workflow is "not found" exactly as an absent one, and never makes a prefix ambiguous.
    """
    ref = ref.strip().lower()
    if not looks_like_id_prefix(ref):
        raise NotFound(f"{kind} not found: {ref}")
    if len(ref) < MIN_PREFIX_CHARS:
        raise InvalidArgument(
            f"{kind} id prefix {ref!r} is too short: give at least {MIN_PREFIX_CHARS} characters"
        )
    matches = store.ids_with_prefix(ref, limit=2, scope=scope)
    if not matches:
        raise NotFound(f"{kind} not found: {ref}")
    if len(matches) > 1:
        raise InvalidArgument(f"{kind} id prefix {ref!r} is ambiguous: give more characters")
    return matches[0]


def find_job(store: Store, ref: str, scope: Scope | None = None) -> Job:
    """The job a full id or unique prefix names, among those ``scope`` admits."""
    return store.get(resolve_id(store, ref, "job", scope))


def check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - MUTABLE_FIELDS
    if unknown:
        raise ValueError(f"not mutable job fields: {sorted(unknown)}")


__all__ = [
    "JobQuery",
    "NotFound",
    "Store",
    "WorkflowStore",
    "check_fields",
    "find_job",
    "resolve_id",
]
