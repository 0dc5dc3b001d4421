"""SQLiteWorkflowStore: workflow records, kept in the same SQLite database as jobs.

Documents are sealed with the server key at rest (a workflow's YAML may carry secret
environment values); one that holds secrets is erased when its workflow ends.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime

from jobyard.domain.access import Scope
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import utcnow
from jobyard.domain.requests import Claimed, RequestKey
from jobyard.domain.workflows import WorkflowJobRow, WorkflowRecord, WorkflowStatus
from jobyard.store.requests import duplicate, find_claim, insert_claim
from jobyard.store.sealing import SEALED_PREFIX, SecretBox, is_sealed
from jobyard.store.sqlite import scope_sql, transaction

log = logging.getLogger("jobyard.store")


def workflow_not_found(workflow_id: str) -> NotFound:
    return NotFound(f"workflow not found: {workflow_id}")


class SQLiteWorkflowStore:
    """The WorkflowStore port over the job store's connection."""

    def __init__(self, db: sqlite3.Connection, box: SecretBox | None = None) -> None:
        self._db = db
        self._box = box or SecretBox.ephemeral()
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
        return self._record(row)

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
        return [self._record(r) for r in self._db.execute(sql, params).fetchall()]

    def set_job(
        self, workflow_id: str, name: str, *, job_id: str | None, status: str, reason: str | None
    ) -> None:
        self._db.execute(
            "UPDATE workflow_jobs SET job_id = ?, status = ?, reason = ?"
            " WHERE workflow_id = ? AND name = ?",
            (job_id, status, reason, workflow_id, name),
        )

    def finish(self, workflow_id: str, status: WorkflowStatus) -> None:
        self._db.execute(
            # A document with secret values is erased with the end: its jobs had their own.
            "UPDATE workflows SET status = ?, ended_at = ?,"
            " document = CASE WHEN holds_secrets THEN '' ELSE document END"
            " WHERE id = ? AND ended_at IS NULL",
            (status.value, utcnow().isoformat(), workflow_id),
        )

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


def _context(workflow_id: str) -> str:
    return f"workflow/{workflow_id}"
