"""WorkflowRunner: starts each workflow job as soon as its requirements hold.

Event driven: the runner follows the engine's job events; when a workflow job ends it
re-evaluates that workflow at once (no polling). Workflows and the place of each of their
jobs are stored, so a half-done workflow continues after a server restart.

Submitting is quick whatever the size: the document is parsed off the event loop (see
:mod:`jobyard.engine.parsing`), validated whole, stored in one transaction, and answered;
its first jobs start in the background.

Workflows are scoped as jobs are (:mod:`jobyard.domain.access`): a workflow has an owner
and a project, its jobs are submitted as its owner, and a caller who may not see it gets
"workflow not found" and does not find it in lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any

from jobyard.domain.access import SYSTEM, Identity, Role, scope
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, JobyardError, NotFound
from jobyard.domain.jobs import Job, utcnow
from jobyard.domain.requests import DuplicateRequest, replayed
from jobyard.domain.status import Status, TerminationReason
from jobyard.domain.uploads import Upload, select
from jobyard.domain.workflows import (
    PENDING,
    WorkflowJobRow,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowStatus,
)
from jobyard.engine.events import WatcherTooSlow
from jobyard.engine.jobs import JobEngine
from jobyard.engine.parsing import WorkflowParser
from jobyard.engine.uploads import load, place
from jobyard.store.base import JobQuery, WorkflowStore, resolve_id

log = logging.getLogger("jobyard.workflows")

# Jobs of a workflow checked per turn of the event loop (a few ms of work).
CHECKS_PER_TURN = 100
NEVER_STARTED = Status.STOPPED.value  # the row status of a job that never got to start


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowJobView:
    """One workflow job as shown to users: its job when started, else its pending row."""

    name: str
    dependencies: tuple[str, ...]
    row: WorkflowJobRow
    job: Job | None

    @property
    def status(self) -> str:
        return self.job.status.value if self.job else self.row.status


class WorkflowRunner:
    def __init__(self, engine: JobEngine, store: WorkflowStore, parser: WorkflowParser) -> None:
        self._engine = engine
        self._store = store
        self._parser = parser
        self._live: dict[str, _Live] = {}
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        # One evaluation per workflow at a time: submitting awaits, and a second evaluation
        # in between would start the same job twice.
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        """Follow job events, then catch up with every unfinished workflow in the background:
        each document is parsed again (in a child process), which must not hold up the
        server's start by a fraction of a second per workflow."""
        self._task = asyncio.create_task(self._follow(), name="workflow-events")
        await self._ready.wait()
        self._in_background(self._catch_up(), name="workflow-catch-up")

    async def _catch_up(self) -> None:
        for record in self._store.list(unfinished_only=True):
            await self._evaluate(record.id)

    async def close(self) -> None:
        tasks = [*self._background, *([self._task] if self._task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("workflow evaluation failed", exc_info=task.exception())

    async def _follow(self) -> None:
        while True:
            try:
                async with self._engine.events.subscribe() as events:
                    self._ready.set()
                    async for job in events:
                        if job.workflow_id and job.status.terminal:
                            await self._evaluate(job.workflow_id, ended=job)
            except WatcherTooSlow:
                log.warning("workflow runner fell behind job events; re-evaluating all")
                self._live.clear()
                self._in_background(self._catch_up(), name="workflow-catch-up")

    # -- commands ------------------------------------------------------------------------

    async def submit(
        self,
        caller: Identity,
        document: str,
        name: str = "",
        *,
        uploads: Sequence[Upload] = (),
        request_key: str = "",
    ) -> WorkflowRecord:
        """Validate and store a workflow owned by ``caller`` (filed under its project); its
        jobs start in the background. ``uploads`` are the files its jobs name in
        ``uploads: {files: [...]}``, checked with everything else before anything runs and
        kept until each of those jobs is created. With a ``request_key``, a retry is
        answered with the workflow the first attempt created."""
        body = {"document": document, "name": name, "uploads": uploads}
        request = self._engine.requests.key(caller.name, request_key, "run_workflow", body)
        if request is not None:
            claimed = self._store.claimed(caller.name, request.key, utcnow())
            if claimed is not None:
                return self._store.get(replayed(request, claimed, "workflow"))
        spec = await self._parser.parse(document)
        files = self._engine.check_uploads(uploads)
        for i, job in enumerate(spec.jobs):  # host, volume, runtime and upload checks, first
            if i and i % CHECKS_PER_TURN == 0:
                await asyncio.sleep(0)  # thousands of jobs: let other clients in between
            try:
                self._engine.prepare(job.spec, caller)
                select(files, job.spec.uploads)
            except (InvalidArgument, NotFound) as exc:
                raise type(exc)(f"invalid workflow: job {job.name!r}: {exc}") from None
        record = WorkflowRecord(
            id=str(uuid.uuid4()), name=name or "workflow", owner=caller.name, document=document,
            status=WorkflowStatus.RUNNING, created_at=utcnow(), ended_at=None,
            jobs=tuple(WorkflowJobRow(j.name, i, None, PENDING, None, j.dependencies)
                       for i, j in enumerate(spec.jobs)),
            project=caller.project, holds_secrets=spec.holds_secrets,
        )  # fmt: skip
        await asyncio.sleep(0)  # building the record was a turn's work already
        try:
            self._store.create(record, request)
        except DuplicateRequest as taken:  # a retry that raced its first attempt
            assert request is not None
            return self._store.get(replayed(request, taken.claimed, "workflow"))
        if files:
            place(self._engine.layout.workflow_uploads(record.id), files)
        self._live[record.id] = _Live(
            record.id, record.owner, record.project, spec, pending=set(spec.by_name)
        )
        log.info("workflow accepted | workflowId=%s jobs=%d owner=%s project=%s",
                 record.id, len(spec.jobs), record.owner, record.project)  # fmt: skip
        self._in_background(self._evaluate(record.id), name=f"workflow-{record.id}")
        return record

    def workflow(self, caller: Identity, ref: str) -> WorkflowRecord:
        """A workflow by full id or unique prefix (at least 4 characters), if ``caller``
        may see it: else "workflow not found", as for an absent one."""
        return self._store.get(resolve_id(self._store, ref, "workflow", scope(caller)))

    def workflows(self, caller: Identity) -> list[WorkflowRecord]:
        """Every workflow ``caller`` may see, oldest first."""
        return self._store.list(scope=scope(caller))

    def jobs_of(self, record: WorkflowRecord) -> list[WorkflowJobView]:
        """The jobs of a workflow (one the caller was allowed to look up), in order."""
        size = max(1, len(record.jobs))
        query = JobQuery(workflow_id=record.id, page_size=size)
        jobs, _ = self._engine.query(SYSTEM, query)
        by_id = {job.id: job for job in jobs}
        return [
            WorkflowJobView(row.name, row.dependencies, row, by_id.get(row.job_id or ""))
            for row in record.jobs
        ]

    async def stop(self, caller: Identity, ref: str) -> WorkflowRecord:
        """Stop running jobs and cancel the ones not started yet."""
        record = self.workflow(caller, ref)
        if record.ended_at is not None:
            raise FailedPrecondition(
                f"workflow is not running: {record.id} (current status: {record.status})"
            )
        async with self._locks.setdefault(record.id, asyncio.Lock()):
            # Ended first: from here no evaluation starts another of its jobs.
            self._store.finish(record.id, WorkflowStatus.STOPPED)
            self._live.pop(record.id, None)
            self._drop_uploads(record.id)
        for view in self.jobs_of(self._store.get(record.id)):
            if view.job is None and view.row.status == PENDING:
                self._store.set_job(record.id, view.name, job_id=None, status=NEVER_STARTED,
                                    reason=TerminationReason.USER_STOP.value)  # fmt: skip
            elif view.job is not None and not view.job.status.terminal:
                with contextlib.suppress(JobyardError):
                    await self._engine.stop(caller, view.job.id)
        return self._store.get(record.id)

    # -- evaluation ----------------------------------------------------------------------

    async def _load(self, workflow_id: str) -> _Live | None:
        """The in-memory state of an unfinished workflow (rebuilt from the store once)."""
        if workflow_id in self._live:
            return self._live[workflow_id]
        record = self._store.get(workflow_id)
        if record.ended_at is not None:
            return None
        spec = await self._parser.parse(record.document)
        live = _Live(record.id, record.owner, record.project, spec)
        for view in self.jobs_of(record):
            live.settle(view.name, _final_status(view))
            if view.job is not None:
                live.by_job[view.job.id] = view.name
            elif view.row.status == PENDING:
                live.pending.add(view.name)
        live.recount()
        self._live[workflow_id] = live
        return live

    async def _evaluate(self, workflow_id: str, ended: Job | None = None) -> None:
        lock = self._locks.setdefault(workflow_id, asyncio.Lock())
        async with lock:
            live = await self._load(workflow_id)
            if live is None:
                return
            if ended is None:
                await self._scan(live)
            else:
                name = live.by_job.get(ended.id)
                if name is None or live.outcome[name]:
                    return
                await self._propagate(live, name, ended.status.value)
            self._maybe_finish(live)

    async def _scan(self, live: _Live) -> None:
        """Evaluate every pending job, dependencies first (a new or reloaded workflow)."""
        for spec in live.spec.jobs:
            name = spec.name
            if name not in live.pending:
                continue
            outcome = live.outcome
            if any(outcome[r.job] and outcome[r.job] != r.status.value for r in spec.requires):
                self._cancel(live, name)
                live.settle(name, NEVER_STARTED)
            elif all(outcome[r.job] == r.status.value for r in spec.requires):
                job = await self._start(live, name)
                if job.status.terminal:  # e.g. a launch that failed at once
                    live.settle(name, job.status.value)
        live.recount()

    async def _propagate(self, live: _Live, name: str, status: str) -> None:
        """A job ended: look at its dependents only, and theirs in turn if they end too.

        Each dependent keeps a count of its unmet requirements, so a fan-in of N jobs costs
        O(1) per ending dependency instead of a scan of N requirements.
        """
        work = [(name, status)]
        while work:
            done, done_status = work.pop()
            live.settle(done, done_status)
            for dependent in live.dependents[done]:
                if dependent not in live.pending:
                    continue
                if live.required[dependent][done] != done_status:
                    self._cancel(live, dependent)
                    work.append((dependent, NEVER_STARTED))
                    continue
                live.unmet[dependent] -= 1
                if live.unmet[dependent] == 0:
                    job = await self._start(live, dependent)
                    if job.status.terminal:
                        work.append((dependent, job.status.value))

    async def _start(self, live: _Live, name: str) -> Job:
        live.pending.discard(name)
        spec = live.by_name[name].spec
        stored = self._engine.layout.workflow_uploads(live.id)
        job = await self._engine.submit(
            live.submitter, spec, workflow_id=live.id,
            uploads=load(stored, spec.uploads) if spec.uploads else (),
        )  # fmt: skip
        live.by_job[job.id] = name
        self._store.set_job(live.id, name, job_id=job.id, status=job.status.value, reason=None)
        return job

    def _cancel(self, live: _Live, name: str) -> None:
        """A requirement of ``name`` can no longer hold: it never starts."""
        live.pending.discard(name)
        self._store.set_job(live.id, name, job_id=None, status=NEVER_STARTED,
                            reason=TerminationReason.DEPENDENCY_FAILED.value)  # fmt: skip

    def _maybe_finish(self, live: _Live) -> None:
        if live.unfinished:
            return
        done = all(s == Status.COMPLETED.value for s in live.outcome.values())
        status = WorkflowStatus.COMPLETED if done else WorkflowStatus.FAILED
        self._store.finish(live.id, status)
        self._live.pop(live.id, None)
        self._locks.pop(live.id, None)
        self._drop_uploads(live.id)
        log.info("workflow ended | workflowId=%s status=%s", live.id, status)

    def _drop_uploads(self, workflow_id: str) -> None:
        """The files a workflow's jobs were sent: every job that named them has them now."""
        # Small (bounded by maxUploadBytes) and local: removing inline keeps the order simple.
        shutil.rmtree(self._engine.layout.workflow_uploads(workflow_id).parent, True)


class _Live:
    """What the runner keeps in memory for an unfinished workflow."""

    def __init__(
        self,
        workflow_id: str,
        owner: str,
        project: str,
        spec: WorkflowSpec,
        pending: set[str] | None = None,
    ) -> None:
        self.id = workflow_id
        # Its jobs are the workflow owner's, filed under its project (the role is not kept:
        # submitting does not depend on it).
        self.submitter = Identity(owner, Role.USER, project)
        self.spec = spec
        self.by_name = spec.by_name
        self.outcome: dict[str, str] = dict.fromkeys(self.by_name, "")  # "" while it may run
        self.unfinished = len(self.outcome)  # names whose outcome is still ""
        self.by_job: dict[str, str] = {}  # job id -> name
        self.pending: set[str] = pending or set()  # names not created and not cancelled
        self.unmet: dict[str, int] = {}  # pending name -> requirements not met yet
        # name -> {dependency name -> the status it must end in}
        self.required = {j.name: {r.job: r.status.value for r in j.requires} for j in spec.jobs}
        self.dependents: dict[str, list[str]] = {j.name: [] for j in spec.jobs}
        for job in spec.jobs:
            for dep in job.dependencies:
                self.dependents[dep].append(job.name)

    def settle(self, name: str, status: str) -> None:
        """Record ``name``'s final status ("" leaves it open)."""
        if status and not self.outcome[name]:
            self.unfinished -= 1
        self.outcome[name] = status

    def recount(self) -> None:
        for name in self.pending:
            wanted = self.required[name]
            self.unmet[name] = sum(self.outcome[dep] != st for dep, st in wanted.items())


def _final_status(view: WorkflowJobView) -> str:
    """The terminal status of a workflow job, or "" while it may still run."""
    if view.job is not None:
        return view.job.status.value if view.job.status.terminal else ""
    return "" if view.row.status == PENDING else view.row.status


__all__ = ["WorkflowJobView", "WorkflowRunner"]
