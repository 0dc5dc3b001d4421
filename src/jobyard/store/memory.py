"""In-memory fakes of the store ports, with the SQLite adapters' semantics, for unit tests."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Awaitable, Generator, Iterable, Mapping
from datetime import datetime
from typing import Any

from jobyard.domain.access import Owned, Scope
from jobyard.domain.errors import InvalidArgument, NotFound, job_not_found
from jobyard.domain.jobs import Job, utcnow
from jobyard.domain.requests import Claimed, DuplicateRequest, RequestKey
from jobyard.domain.status import Status
from jobyard.domain.workflows import WorkflowRecord, WorkflowStatus
from jobyard.store.base import JobQuery, check_fields
from jobyard.store.records import annotated, created, transitioned, with_fields


class MemoryRequestKeys:
    """Request ids of idempotent creates, as the SQLite stores keep them in request_keys."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], tuple[RequestKey, str]] = {}

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        found = self._keys.get((owner, key))
        if found is None or found[0].expires_at <= now:
            return None
        return Claimed(found[0].fingerprint, found[1])

    def check(self, request: RequestKey | None) -> None:
        """Raise DuplicateRequest if ``request``'s id is taken (before anything is created)."""
        if request is not None:
            claimed = self.claimed(request.owner, request.key, utcnow())
            if claimed is not None:
                raise DuplicateRequest(claimed)

    def record(self, request: RequestKey | None, result_id: str) -> None:
        if request is not None:
            self._keys[(request.owner, request.key)] = (request, result_id)


class MemoryStore:
    def __init__(self, requests: MemoryRequestKeys | None = None) -> None:
        self._jobs: dict[str, Job] = {}
        self._requests = requests or MemoryRequestKeys()

    def create(self, job: Job, request: RequestKey | None = None) -> None:
        if job.id in self._jobs:
            raise InvalidArgument(f"job {job.id} exists")
        self._requests.check(request)
        self._jobs[job.id] = created(job)
        self._requests.record(request, job.id)

    def committed(self) -> Awaitable[None]:
        """Every change is "durable" at once here."""
        return _Done()

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        return self._requests.claimed(owner, key, now)

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise job_not_found(job_id) from None

    def ids_with_prefix(self, prefix: str, limit: int, scope: Scope | None = None) -> list[str]:
        return _matching(self._jobs, prefix, limit, scope)

    def list(
        self, statuses: Iterable[Status] | None = None, limit: int | None = None
    ) -> builtins.list[Job]:
        wanted = None if statuses is None else set(statuses)
        jobs = [j for j in self._jobs.values() if wanted is None or j.status in wanted]
        return jobs if limit is None else jobs[:limit]

    def transition(self, job_id: str, new: Status, message: str, **fields: Any) -> Job:
        check_fields(fields)
        job = transitioned(self.get(job_id), new, message, fields, utcnow())
        self._jobs[job_id] = job
        return job

    def update(self, job_id: str, **fields: Any) -> Job:
        check_fields(fields)
        job = with_fields(self.get(job_id), fields)
        self._jobs[job_id] = job
        return job

    def annotate(
        self, job_id: str, message: str, *, only_in: Iterable[Status], **fields: Any
    ) -> Job:
        check_fields(fields)
        job = annotated(self.get(job_id), message, only_in, fields, utcnow())
        self._jobs[job_id] = job
        return job

    def query(self, query: JobQuery) -> tuple[builtins.list[Job], str]:
        ordered = list(reversed(self._jobs.values()))
        after = query.after_seq()
        if after is not None:
            ordered = ordered[len(ordered) - after + 1 :]  # positions before the token's
        matching = [j for j in ordered if query.matches(j)]
        page = matching[: query.page_size]
        if len(matching) <= query.page_size or not page:
            return page, ""
        # The token is the 1-based position of the last job of the page, counted from the
        # oldest (the SQLite store's seq has the same meaning).
        return page, str(list(self._jobs).index(page[-1].id) + 1)

    def delete(self, job_id: str) -> None:
        if self._jobs.pop(job_id, None) is None:
            raise job_not_found(job_id)

    def close(self) -> None:
        self._jobs.clear()


class _Done:
    """An awaitable that is done already (needs no event loop)."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


class MemoryWorkflowStore:
    """An in-memory WorkflowStore with the same semantics as SQLiteWorkflowStore."""

    def __init__(self, requests: MemoryRequestKeys | None = None) -> None:
        self._records: dict[str, WorkflowRecord] = {}
        self._requests = requests or MemoryRequestKeys()

    def create(self, record: WorkflowRecord, request: RequestKey | None = None) -> None:
        if record.id in self._records:
            raise InvalidArgument(f"workflow {record.id} exists")
        self._requests.check(request)
        self._records[record.id] = record
        self._requests.record(request, record.id)

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        return self._requests.claimed(owner, key, now)

    def get(self, workflow_id: str) -> WorkflowRecord:
        try:
            return self._records[workflow_id]
        except KeyError:
            raise NotFound(f"workflow not found: {workflow_id}") from None

    def ids_with_prefix(
        self, prefix: str, limit: int, scope: Scope | None = None
    ) -> builtins.list[str]:
        return _matching(self._records, prefix, limit, scope)

    def list(
        self, *, unfinished_only: bool = False, scope: Scope | None = None
    ) -> builtins.list[WorkflowRecord]:
        return [
            r
            for r in self._records.values()
            if (not unfinished_only or r.ended_at is None) and (scope is None or scope.admits(r))
        ]

    def set_job(
        self, workflow_id: str, name: str, *, job_id: str | None, status: str, reason: str | None
    ) -> None:
        record = self.get(workflow_id)
        jobs = tuple(
            dataclasses.replace(j, job_id=job_id, status=status, reason=reason)
            if j.name == name
            else j
            for j in record.jobs
        )
        self._records[workflow_id] = dataclasses.replace(record, jobs=jobs)

    def finish(self, workflow_id: str, status: WorkflowStatus) -> None:
        record = self.get(workflow_id)
        if record.ended_at is None:
            document = "" if record.holds_secrets else record.document  # as SQLite's
            ended = dataclasses.replace(record, status=status, ended_at=utcnow(), document=document)
            self._records[workflow_id] = ended


def _matching(
    items: Mapping[str, Owned], prefix: str, limit: int, scope: Scope | None
) -> list[str]:
    """Ids of ``items`` starting with ``prefix`` (insertion order), only those ``scope`` admits."""
    ids = [i for i, item in items.items() if i.startswith(prefix)]
    return [i for i in ids if scope is None or scope.admits(items[i])][:limit]
