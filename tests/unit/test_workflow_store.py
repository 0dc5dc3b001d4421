"""The WorkflowStore port against both adapters, and the runner on fakes only."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import utcnow
from jobyard.domain.status import Status
from jobyard.domain.workflows import (
    PENDING,
    WorkflowJobRow,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowStatus,
)
from jobyard.engine.parsing import InlineWorkflowParser
from jobyard.engine.workflows import WorkflowRunner
from jobyard.runtime import ExitInfo
from jobyard.store import (
    MemoryWorkflowStore,
    SQLiteStore,
    SQLiteWorkflowStore,
    WorkflowStore,
    resolve_id,
)
from tests.unit.test_engine import Rig, rig_for, until
from tests.unit.test_secrets_at_rest import on_disk
from tests.unit.test_store_writer import hold_the_writer

ALICE = Identity("alice", Role.USER)

WF_A = "cccc1111-0000-4000-8000-000000000001"
WF_B = "cccc2222-0000-4000-8000-000000000002"


def record(workflow_id: str = WF_A) -> WorkflowRecord:
    return WorkflowRecord(
        id=workflow_id, name="t.yaml", owner="alice", document="jobs: {}",
        status=WorkflowStatus.RUNNING, created_at=utcnow(), ended_at=None,
        jobs=(WorkflowJobRow("a", 0, None, PENDING, None),
              WorkflowJobRow("b", 1, None, PENDING, None, ("a",))),
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "sqlite-writer", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkflowStore]:
    if request.param == "memory":
        yield MemoryWorkflowStore()
        return
    jobs = SQLiteStore(tmp_path / "db")
    writer = jobs.writer if request.param == "sqlite-writer" else None
    yield SQLiteWorkflowStore(jobs.connection, writer=writer)
    jobs.close()


def test_changes_through_the_writer_show_at_once_and_are_stored_once_committed(
    tmp_path: Path,
) -> None:
    jobs = SQLiteStore(tmp_path / "db")
    workflows = SQLiteWorkflowStore(jobs.connection, writer=jobs.writer)
    workflows.create(record())
    release = hold_the_writer(jobs.writer)
    workflows.set_job(WF_A, "a", job_id="job-1", status="RUNNING", reason=None)
    workflows.finish(WF_A, WorkflowStatus.FAILED)
    plain = SQLiteWorkflowStore(jobs.connection)  # reads the database only
    assert plain.get(WF_A).jobs[0].job_id is None and plain.get(WF_A).ended_at is None
    shown = workflows.get(WF_A)
    assert (shown.jobs[0].job_id, shown.jobs[0].status) == ("job-1", "RUNNING")
    assert shown.status is WorkflowStatus.FAILED and shown.ended_at is not None
    assert workflows.list(unfinished_only=True) == []
    release.set()
    jobs.flush()
    stored = plain.get(WF_A)
    assert (stored.jobs[0].job_id, stored.status) == ("job-1", WorkflowStatus.FAILED)
    assert workflows.get(WF_A).jobs == stored.jobs  # nothing left only in memory
    jobs.close()


def test_a_created_workflow_reads_back_whole(store: WorkflowStore) -> None:
    store.create(record())
    got = store.get(WF_A)
    assert got.status is WorkflowStatus.RUNNING and got.ended_at is None
    assert [(j.name, j.dependencies) for j in got.jobs] == [("a", ()), ("b", ("a",))]
    with pytest.raises(InvalidArgument):
        store.create(record())


def test_jobs_are_placed_and_the_workflow_ends_once(store: WorkflowStore) -> None:
    store.create(record())
    store.set_job(WF_A, "a", job_id="j-1", status="QUEUED", reason=None)
    store.set_job(WF_A, "b", job_id=None, status="STOPPED", reason="DEPENDENCY_FAILED")
    store.finish(WF_A, WorkflowStatus.FAILED)
    store.finish(WF_A, WorkflowStatus.COMPLETED)  # ended already: no change
    got = store.get(WF_A)
    assert (got.status, got.ended_at is not None) == (WorkflowStatus.FAILED, True)
    assert [(j.job_id, j.status, j.reason) for j in got.jobs] == [
        ("j-1", "QUEUED", None), (None, "STOPPED", "DEPENDENCY_FAILED"),
    ]  # fmt: skip
    assert store.list(unfinished_only=True) == []


def test_prefixes_resolve_for_workflows_as_for_jobs(store: WorkflowStore) -> None:
    store.create(record(WF_A))
    store.create(record(WF_B))
    assert resolve_id(store, "CCCC1", kind="workflow") == WF_A
    assert resolve_id(store, WF_B, kind="workflow") == WF_B
    with pytest.raises(InvalidArgument, match="workflow id prefix 'cccc' is ambiguous"):
        resolve_id(store, "cccc", kind="workflow")
    with pytest.raises(NotFound, match="workflow not found: dddd"):
        resolve_id(store, "dddd", kind="workflow")
    with pytest.raises(NotFound, match="workflow not found"):
        store.get("nope")


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[tuple[Rig, WorkflowRunner]]:
    async with rig_for(tmp_path) as rig:
        workflows = WorkflowRunner(rig.engine, MemoryWorkflowStore(), InlineWorkflowParser())
        await workflows.start()
        try:
            yield rig, workflows
        finally:
            await workflows.close()


async def test_submit_answers_at_once_and_starts_jobs_in_the_background(
    runner: tuple[Rig, WorkflowRunner],
) -> None:
    rig, workflows = runner
    doc = "jobs:\n  a: {command: x}\n  b: {command: y, requires: [a]}\n"
    accepted = await workflows.submit(ALICE, doc)
    assert [j.status for j in accepted.jobs] == [PENDING, PENDING]  # stored, not yet started

    await until(lambda: len(rig.runtime.started) == 1, "the first job started")
    # Started is not yet recorded: the runner records the job id once submit answers.
    await until(lambda: workflows.workflow(ALICE, accepted.id).jobs[0].job_id is not None)
    first = workflows.workflow(ALICE, accepted.id[:8]).jobs[0].job_id
    assert first is not None
    rig.runtime.finish(first, ExitInfo(exit_code=0))
    await until(lambda: len(rig.runtime.started) == 2, "the dependent started")
    await until(lambda: workflows.workflow(ALICE, accepted.id).jobs[1].job_id is not None)
    second = workflows.workflow(ALICE, accepted.id).jobs[1].job_id
    assert second is not None
    rig.runtime.finish(second, ExitInfo(exit_code=0))
    await until(lambda: workflows.workflow(ALICE, accepted.id).ended_at is not None, "the end")

    done = workflows.workflow(ALICE, accepted.id)
    assert done.status is WorkflowStatus.COMPLETED
    views = workflows.jobs_of(done)
    assert [(v.name, v.dependencies, v.status) for v in views] == [
        ("a", (), Status.COMPLETED.value), ("b", ("a",), Status.COMPLETED.value),
    ]  # fmt: skip


def test_a_document_with_secrets_is_erased_when_its_workflow_ends(store: WorkflowStore) -> None:
    store.create(dataclasses.replace(record(WF_A), holds_secrets=True))
    store.create(record(WF_B))
    assert store.get(WF_A).document == "jobs: {}" and store.get(WF_A).shown_document == ""
    store.finish(WF_A, WorkflowStatus.COMPLETED)
    store.finish(WF_B, WorkflowStatus.COMPLETED)
    assert (store.get(WF_A).document, store.get(WF_A).holds_secrets) == ("", True)
    assert store.get(WF_B).shown_document == "jobs: {}"


def test_documents_are_sealed_at_rest(tmp_path: Path) -> None:
    jobs = SQLiteStore(tmp_path / "data" / "db")
    workflows = SQLiteWorkflowStore(jobs.connection)
    text = "jobs: {a: {command: x, secret_environment: {T: hunter2-in-yaml}}}"
    workflows.create(dataclasses.replace(record(), document=text, holds_secrets=True))
    assert workflows.get(WF_A).document == text
    jobs.close()
    assert b"hunter2-in-yaml" not in on_disk(tmp_path / "data")


class GatedParser(InlineWorkflowParser):
    """Parses only once the test opens the gate (a slow child process, on demand)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def parse(self, text: str) -> WorkflowSpec:
        await self.gate.wait()
        return await super().parse(text)


async def test_a_restarted_runner_starts_at_once_and_catches_up_behind(tmp_path: Path) -> None:
    async with rig_for(tmp_path) as rig:
        store = MemoryWorkflowStore()
        first = WorkflowRunner(rig.engine, store, InlineWorkflowParser())
        await first.start()
        doc = "jobs:\n  a: {command: x}\n  b: {command: y, requires: [a]}\n"
        accepted = await first.submit(ALICE, doc)
        await until(lambda: len(rig.runtime.started) == 1, "the first job started")
        await until(lambda: store.get(accepted.id).jobs[0].job_id is not None, "its id recorded")
        await first.close()

        parser = GatedParser()
        again = WorkflowRunner(rig.engine, store, parser)
        await asyncio.wait_for(again.start(), 1)  # not held up by re-parsing the document
        try:
            parser.gate.set()
            first_job = store.get(accepted.id).jobs[0].job_id
            assert first_job is not None
            rig.runtime.finish(first_job, ExitInfo(exit_code=0))
            await until(lambda: len(rig.runtime.started) == 2, "the dependent started")
        finally:
            await again.close()
