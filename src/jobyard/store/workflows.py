"""SQLiteWorkflowStore: workflow records, kept in the same SQLite database as jobs.

Documents are sealed with the server key at rest (a workflow's YAML may carry secret
environment values); one that holds secrets is erased when its workflow ends.

Given the job store's writer (:mod:`jobyard.store.writer`), the changes made while a
workflow runs (a job's place, the end) are queued to it, in order with the jobs' own
changes, and shown at once from memory until committed: the event loop does not wait for
a commit per workflow job. Creates stay synchronous (RunWorkflow answers once durable).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sqlite3
import threading
from datetime import datetime

from jobyard.domain.access import Scope
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import utcnow
from jobyard.domain.requests import Claimed, RequestKey
from jobyard.domain.workflows import WorkflowJobRow, WorkflowRecord, WorkflowStatus
from jobyard.store.requests import duplicate, find_claim, insert_claim
from jobyard.store.sealing import SEALED_PREFIX, SecretBox, is_sealed
from jobyard.store.sqlite import scope_sql, transaction
from jobyard.store.writer import BatchWriter

_JobPlace = tuple[str | None, str, str | None]  # a workflow job's job_id, status, reason

log = logging.getLogger("jobyard.store")


def workflow_not_found(workflow_id: str) -> NotFound:
    return NotFound(f"workflow not found: {workflow_id}")


class SQLiteWorkflowStore:
    """The WorkflowStore port over the job store's connection."""

    def __init__(
        self,
        db: sqlite3.Connection,
        box: SecretBox | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        self._db = db
        self._box = box or SecretBox.ephemeral()
        self._writer = writer
        self._lock = threading.Lock()  # the changes not yet committed, against the writer
        self._places: dict[tuple[str, str], tuple[int, _JobPlace]] = {}  # -> (change no, place)
        self._ends: dict[str, tuple[int, WorkflowStatus, datetime]] = {}
        self._changes = 0
        if box is not None:  # never seal under a key that dies with this store
            self._seal_plaintext()

    def _seal_plaintext(self) -> None:
        """Seal documents an earlier version stored in clear, then truncate the WAL."""
        rows = self._db.execute(
            "SELECT id, document FROM workflows"
            " WHERE document != '' AND substr(document, 1, ?) != ?",
            (len(SEALED_PREFIX), SEALED_PREFIX),
        ).fetchall()
        for workflow_id, document in rows:
            sealed = self._box.seal(document, _context(workflow_id))
            self._db.execute(
                "UPDATE workflows SET document = ? WHERE id = ?", (sealed, workflow_id)
            )
        if rows:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def create(self, record: WorkflowRecord, request: RequestKey | None = None) -> None:
        now = utcnow()
        try:
            self._insert(record, request, now)
        except sqlite3.IntegrityError as exc:
            taken = duplicate(self._db, request, now) if request is not None else None
            if taken is not None:
                raise taken from exc
            raise InvalidArgument(f"workflow {record.id} exists") from exc

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        return find_claim(self._db, owner, key, now)

    def _insert(self, record: WorkflowRecord, request: RequestKey | None, now: datetime) -> None:
        with transaction(self._db):
            if request is not None:
                insert_claim(self._db, request, record.id, now)
            self._db.execute(
                "INSERT INTO workflows (id, name, owner, project, document, status, created_at,"
                " holds_secrets) VALUES (?,?,?,?,?,?,?,?)",
                (record.id, record.name, record.owner, record.project,
                 self._box.seal(record.document, _context(record.id)), record.status.value,
                 record.created_at.isoformat(), record.holds_secrets),
            )  # fmt: skip
            self._db.executemany(
                "INSERT INTO workflow_jobs (workflow_id, name, position, status, dependencies)"
                " VALUES (?,?,?,?,?)",
                [(record.id, j.name, j.position, j.status, json.dumps(j.dependencies))
                 for j in record.jobs],
            )  # fmt: skip

    def get(self, workflow_id: str) -> WorkflowRecord:
        row = self._db.execute("SELECT * FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is None:
            raise workflow_not_found(workflow_id)
        return self._latest(self._record(row))

    def ids_with_prefix(self, prefix: str, limit: int, scope: Scope | None = None) -> list[str]:
        where, params = scope_sql(scope)
        rows = self._db.execute(
            f"SELECT id FROM workflows WHERE substr(id, 1, ?) = ? AND {where} ORDER BY seq LIMIT ?",
            (len(prefix), prefix, *params, limit),
        )
        return [r[0] for r in rows]

    def list(
        self, *, unfinished_only: bool = False, scope: Scope | None = None
    ) -> list[WorkflowRecord]:
        where, params = scope_sql(scope)
        if unfinished_only:
            where += " AND ended_at IS NULL"
        sql = f"SELECT * FROM workflows WHERE {where} ORDER BY seq"
        records = [self._latest(self._record(r)) for r in self._db.execute(sql, params).fetchall()]
        return [r for r in records if not unfinished_only or r.ended_at is None]

    def set_job(
        self, workflow_id: str, name: str, *, job_id: str | None, status: str, reason: str | None
    ) -> None:
        change = functools.partial(_set_job, workflow_id, name, (job_id, status, reason))
        if self._writer is None:
            change(self._db)
            return
        with self._lock:
            self._changes += 1
            number = self._changes
            self._places[(workflow_id, name)] = (number, (job_id, status, reason))
        settled = functools.partial(self._place_settled, (workflow_id, name), number)
        self._writer.submit(change, settled)

    def finish(self, workflow_id: str, status: WorkflowStatus) -> None:
        now = utcnow()
        change = functools.partial(_finish, workflow_id, status, now)
        if self._writer is None:
            change(self._db)
            return
        with self._lock:
            if workflow_id in self._ends:
                return  # ended already
            self._changes += 1
            number = self._changes
            self._ends[workflow_id] = (number, status, now)
        self._writer.submit(change, functools.partial(self._end_settled, workflow_id, number))

    def _place_settled(
        self, key: tuple[str, str], number: int, error: BaseException | None
    ) -> None:
        """A queued job place is committed (or failed: the database has the truth then)."""
        _log_failure(key, error)
        with self._lock:
            if key in self._places and self._places[key][0] == number:
                del self._places[key]

    def _end_settled(self, workflow_id: str, number: int, error: BaseException | None) -> None:
        _log_failure(workflow_id, error)
        with self._lock:
            if workflow_id in self._ends and self._ends[workflow_id][0] == number:
                del self._ends[workflow_id]

    def _latest(self, record: WorkflowRecord) -> WorkflowRecord:
        """``record`` as read, with the changes not yet committed applied."""
        with self._lock:
            places = {n: p for (w, n), (_, p) in self._places.items() if w == record.id}
            end = self._ends.get(record.id)
        if places:
            jobs = tuple(
                dataclasses.replace(j, job_id=p[0], status=p[1], reason=p[2])
                if (p := places.get(j.name)) is not None
                else j
                for j in record.jobs
            )
            record = dataclasses.replace(record, jobs=jobs)
        if end is not None and record.ended_at is None:
            document = "" if record.holds_secrets else record.document
            record = dataclasses.replace(record, status=end[1], ended_at=end[2], document=document)
        return record

    def _record(self, row: sqlite3.Row) -> WorkflowRecord:
        jobs = tuple(
            WorkflowJobRow(
                r["name"], r["position"], r["job_id"], r["status"], r["reason"],
                tuple(json.loads(r["dependencies"] or "[]")),
            )
            for r in self._db.execute(
                "SELECT * FROM workflow_jobs WHERE workflow_id = ? ORDER BY position",
                (row["id"],),
            )
        )  # fmt: skip
        return WorkflowRecord(
            id=row["id"],
            name=row["name"],
            owner=row["owner"],
            document=self._document(row["id"], row["document"]),
            status=WorkflowStatus(row["status"]),
            created_at=datetime.fromisoformat(row["created_at"]),
            ended_at=datetime.fromisoformat(row["ended_at"]) if row["ended_at"] else None,
            jobs=jobs,
            project=row["project"],
            holds_secrets=bool(row["holds_secrets"]),
        )

    def _document(self, workflow_id: str, column: str) -> str:
        if not is_sealed(column):
            return column  # erased (""), or not sealed yet
        try:
            return self._box.open(column, _context(workflow_id))
        except ValueError:
            log.error("workflow %s does not open with this server key", workflow_id)
            return ""


def _log_failure(what: object, error: BaseException | None) -> None:
    if error is not None:
        log.error("workflow change not stored | what=%s error=%s", what, error)


def _set_job(workflow_id: str, name: str, place: _JobPlace, db: sqlite3.Connection) -> None:
    job_id, status, reason = place
    db.execute(
        "UPDATE workflow_jobs SET job_id = ?, status = ?, reason = ?"
        " WHERE workflow_id = ? AND name = ?",
        (job_id, status, reason, workflow_id, name),
    )


def _finish(workflow_id: str, status: WorkflowStatus, at: datetime, db: sqlite3.Connection) -> None:
    db.execute(
        # A document with secret values is erased with the end: its jobs had their own.
        "UPDATE workflows SET status = ?, ended_at = ?,"
        " document = CASE WHEN holds_secrets THEN '' ELSE document END"
        " WHERE id = ? AND ended_at IS NULL",
        (status.value, at.isoformat(), workflow_id),
    )


def _context(workflow_id: str) -> str:
    return f"workflow/{workflow_id}"
