"""SQLiteStore: the embedded default store (WAL, versioned migrations, one connection).

Commits are durable before a call returns (``synchronous=FULL``), so a job whose RunJob
was answered exists after a ``kill -9`` of the server at any moment.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jobyard.domain.access import Scope, principal
from jobyard.domain.errors import DataDiskFull, InvalidArgument, StaleTransition, job_not_found
from jobyard.domain.jobs import Job, JobSpec, ProductRef, Resources, StatusUpdate, Usage, utcnow
from jobyard.domain.requests import Claimed, RequestKey
from jobyard.domain.status import (
    TERMINAL,
    Status,
    TerminationReason,
    can_transition,
    predecessors,
)
from jobyard.store.base import JobQuery, check_fields
from jobyard.store.requests import duplicate, find_claim, insert_claim, purge_expired
from jobyard.store.sealing import (
    ERASED_SECRETS_SQL,
    SecretBox,
    opened_secrets,
    seal_plaintext,
    sealed_secrets,
)

BUSY_TIMEOUT_MS = 5000
_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


def _migrations() -> list[tuple[int, str]]:
    files = resources.files("jobyard.store.migrations")
    out = []
    for entry in files.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(out)


def _statements(sql: str) -> list[str]:
    """Split a migration script into complete statements (comments may hold ';')."""
    out, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current)
            current = ""
    return out


def _usage_json(usage: Usage | None) -> str | None:
    return None if usage is None else json.dumps(dataclasses.asdict(usage))


def _product_json(product: ProductRef | None) -> str | None:
    return None if product is None else json.dumps(dataclasses.asdict(product))


def _product(value: str | None) -> ProductRef | None:
    return None if value is None else ProductRef(**json.loads(value))


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def scope_sql(scope: Scope | None, *, shared: bool = False) -> tuple[str, builtins.list[Any]]:
    """A WHERE condition (and its parameters) admitting what ``scope`` admits, on a table
    with ``owner`` and ``project`` columns (and ``shared_with``, the jobs table, when
    ``shared``)."""
    if scope is None:
        return "1 = 1", []
    if shared:
        own, params = scope_sql(scope)
        names = [principal("user", scope.owner)]
        if scope.project:
            names.append(principal("project", scope.project))
        marks = ", ".join("?" * len(names))
        shares = f"EXISTS (SELECT 1 FROM json_each(shared_with) WHERE value IN ({marks}))"
        return f"({own} OR (shared_with != '[]' AND {shares}))", [*params, *names]
    if not scope.project:
        return "owner = ?", [scope.owner]
    # "project != ''" holds anyway; spelled out, it lets SQLite use the partial index
    # jobs_project (migration 0004) for that half of the OR instead of scanning every job.
    return "(owner = ? OR (project = ? AND project != ''))", [scope.owner, scope.project]


class ObservedConnection(sqlite3.Connection):
    """The store's connection; ``on_commit``, when set (metrics), hears how many seconds
    each :func:`transaction`'s COMMIT took (the durable write: ``synchronous=FULL``)."""

    on_commit: Callable[[float], None] | None = None


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    The rollback is skipped when SQLite has already ended the transaction itself (e.g. a
    COMMIT that failed on a full disk), so the original error is the one raised.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            started = time.perf_counter()
            db.execute("COMMIT")
            observer = getattr(db, "on_commit", None)
            if observer is not None:
                observer(time.perf_counter() - started)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            raise
        raise DataDiskFull("the data disk is full: the job store cannot record the change") from exc


class SQLiteStore:
    """Store adapter over one SQLite file."""

    def __init__(self, path: Path, box: SecretBox | None = None) -> None:
        # Seals secret environments at rest (the server passes its key file's); without one
        # (tests, tools such as `jobyard tokens`) a key that lives only as long as this store.
        self._box = box or SecretBox.ephemeral()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, factory=ObservedConnection
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA foreign_keys = ON")
        # Freed space is zeroed: an erased secret's ciphertext does not linger in free pages.
        self._db.execute("PRAGMA secure_delete = ON")
        path.chmod(0o600)
        self._migrate()
        purge_expired(self._db, utcnow())
        if box is not None:  # never seal under a key that dies with this store (tools)
            seal_plaintext(self._db, self._box, (s.value for s in TERMINAL))

    def _migrate(self) -> None:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
        )
        done = {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}
        for version, sql in _migrations():
            if version in done:
                continue
            with transaction(self._db):
                for statement in _statements(sql):
                    self._db.execute(statement)
                self._db.execute("INSERT INTO schema_migrations VALUES (?)", (version,))

    @property
    def connection(self) -> sqlite3.Connection:
        """The one connection, for stores of other records in the same database."""
        return self._db

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def count_by_status(self) -> dict[Status, int]:
        """How many jobs are in each status (every status, 0 for none): for metrics."""
        counts = dict.fromkeys(Status, 0)
        for status, count in self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[Status(status)] = count
        return counts

    def create(self, job: Job, request: RequestKey | None = None) -> None:
        row = self._row(job)
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        now = utcnow()
        try:
            with transaction(self._db):
                self._db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", list(row.values()))
                self._add_update(job.id, job.created_at, job.status, job.message)
                if request is not None:
                    insert_claim(self._db, request, job.id, now)
        except sqlite3.IntegrityError as exc:
            taken = duplicate(self._db, request, now) if request is not None else None
            if taken is not None:
                raise taken from exc
            raise InvalidArgument(f"job {job.id} exists") from exc

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        return find_claim(self._db, owner, key, now)

    def _row(self, job: Job) -> dict[str, Any]:
        spec, res = job.spec, job.spec.resources
        return {
            "id": job.id, "owner": job.owner, "name": spec.name, "command": spec.command,
            "args": json.dumps(list(spec.args)), "environment": json.dumps(dict(spec.environment)),
            "secret_environment": sealed_secrets(self._box, job.id, spec.secret_environment),
            "max_cpu": res.max_cpu, "cpu_cores": res.cpu_cores, "max_memory": res.max_memory,
            "max_iobps": res.max_iobps, "max_pids": res.max_pids, "max_disk": res.max_disk,
            "status": job.status.value,
            "reason": job.reason and job.reason.value, "exit_code": job.exit_code,
            "created_at": _ts(job.created_at), "started_at": _ts(job.started_at),
            "ended_at": _ts(job.ended_at), "backend": job.backend, "backend_id": job.backend_id,
            "message": job.message, "network": spec.network,
            "time_limit_seconds": spec.time_limit_seconds, "scheduled_at": _ts(spec.schedule),
            "labels": json.dumps(dict(spec.labels)), "replicas": spec.replicas,
            "expires_at": _ts(job.expires_at), "usage": _usage_json(job.usage),
            "suspended_seconds": job.suspended_seconds, "suspended_at": _ts(job.suspended_at),
            "workflow_id": job.workflow_id, "project": job.project,
            "product": _product_json(spec.product),
            "volumes": json.dumps(list(spec.volumes)), "runtime_env": spec.runtime_env,
            "uploads": json.dumps(list(spec.uploads)),
            "shared_with": json.dumps(list(job.shared_with)),
        }  # fmt: skip

    def _add_update(self, job_id: str, at: datetime, status: Status, message: str) -> None:
        self._db.execute(
            "INSERT INTO job_updates (job_id, at, status, message) VALUES (?,?,?,?)",
            (job_id, _ts(at), status.value, message),
        )

    def get(self, job_id: str) -> Job:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise job_not_found(job_id)
        return self._jobs([row])[0]

    def ids_with_prefix(self, prefix: str, limit: int, scope: Scope | None = None) -> list[str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, params = scope_sql(scope, shared=True)
        rows = self._db.execute(
            f"SELECT id FROM jobs WHERE id LIKE ? ESCAPE '\\' AND {where} ORDER BY seq LIMIT ?",
            (escaped + "%", *params, limit),
        )
        return [r[0] for r in rows]

    def list(self, statuses: Iterable[Status] | None = None, limit: int | None = None) -> list[Job]:
        where, params = "", builtins.list[Any]()
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where = f"WHERE status IN ({','.join('?' * len(wanted))})"
            params = builtins.list[Any](wanted)
        rows = self._db.execute(
            f"SELECT * FROM jobs {where} ORDER BY seq LIMIT ?", [*params, limit or -1]
        ).fetchall()
        return self._jobs(rows)

    def query(self, query: JobQuery) -> tuple[builtins.list[Job], str]:
        scoped, params = scope_sql(query.scope, shared=True)
        where: builtins.list[str] = [scoped]
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            params += [s.value for s in query.statuses]
        for column, value in (
            ("name", query.name),
            ("owner", query.owner),
            ("workflow_id", query.workflow_id),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if query.created_after is not None:
            where.append("created_at > ?")
            params.append(_ts(query.created_after))
        if query.created_before is not None:
            where.append("created_at < ?")
            params.append(_ts(query.created_before))
        for key, value in query.labels.items():
            where.append("json_extract(labels, ?) = ?")
            params += [f'$."{key}"', value]
        after = query.after_seq()
        if after is not None:
            where.append("seq < ?")
            params.append(after)
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        rows = self._db.execute(sql, [*params, query.page_size + 1]).fetchall()
        more = len(rows) > query.page_size
        rows = rows[: query.page_size]
        token = str(rows[-1]["seq"]) if more and rows else ""
        return self._jobs(rows), token

    def delete(self, job_id: str) -> None:
        with transaction(self._db):
            self._db.execute("DELETE FROM job_updates WHERE job_id = ?", (job_id,))
            cur = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            if cur.rowcount != 1:
                raise job_not_found(job_id)

    def transition(self, job_id: str, new: Status, message: str, **fields: Any) -> Job:
        check_fields(fields)
        now = utcnow()
        allowed = [s.value for s in predecessors(new)]
        sets = ", ".join(f"{k} = ?" for k in ("status", *fields))
        if new.terminal:  # the job needs its secrets no more: erase them in the same commit
            sets += f", secret_environment = {ERASED_SECRETS_SQL}"
        values = [new.value, *(self._column(v) for v in fields.values())]
        marks = ",".join("?" * len(allowed))
        with transaction(self._db):
            cur = self._db.execute(
                f"UPDATE jobs SET {sets}, message = ? WHERE id = ? AND status IN ({marks})",
                [*values, message, job_id, *allowed],
            )
            if cur.rowcount != 1:
                current = self.get(job_id).status  # raises NotFound
                raise StaleTransition(
                    f"job {job_id}: cannot go from {current} to {new}"
                    + ("" if can_transition(current, new) else " (not allowed)")
                )
            self._add_update(job_id, now, new, message)
        return self.get(job_id)

    def update(self, job_id: str, **fields: Any) -> Job:
        check_fields(fields)
        sets = ", ".join(f"{k} = ?" for k in fields)
        cur = self._db.execute(
            f"UPDATE jobs SET {sets} WHERE id = ?",
            [*(self._column(v) for v in fields.values()), job_id],
        )
        if cur.rowcount != 1:
            raise job_not_found(job_id)
        return self.get(job_id)

    def annotate(
        self, job_id: str, message: str, *, only_in: Iterable[Status], **fields: Any
    ) -> Job:
        check_fields(fields)
        allowed = [s.value for s in only_in]
        sets = ", ".join(f"{k} = ?" for k in fields) or "id = id"
        marks = ",".join("?" * len(allowed))
        with transaction(self._db):
            cur = self._db.execute(
                f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks})",
                [*(self._column(v) for v in fields.values()), job_id, *allowed],
            )
            current = self.get(job_id).status  # raises NotFound
            if cur.rowcount != 1:
                raise StaleTransition(f"job {job_id}: not changed in status {current}")
            self._add_update(job_id, utcnow(), current, message)
        return self.get(job_id)

    @staticmethod
    def _column(value: Any) -> Any:
        if isinstance(value, Usage):
            return _usage_json(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, TerminationReason | Status):
            return value.value
        if isinstance(value, tuple):  # shared_with
            return json.dumps(list(value))
        return value

    def _jobs(self, rows: builtins.list[sqlite3.Row]) -> builtins.list[Job]:
        """Jobs from rows, with their histories read in one query per 500 jobs."""
        updates: dict[str, builtins.list[StatusUpdate]] = {r["id"]: [] for r in rows}
        ids = builtins.list(updates)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for u in self._db.execute(
                "SELECT job_id, at, status, message FROM job_updates"
                f" WHERE job_id IN ({marks}) ORDER BY rowid",
                chunk,
            ):
                update = StatusUpdate(
                    datetime.fromisoformat(u["at"]), Status(u["status"]), u["message"]
                )
                updates[u["job_id"]].append(update)
        return [self._job(r, tuple(updates[r["id"]])) for r in rows]

    def _job(self, row: sqlite3.Row, updates: tuple[StatusUpdate, ...]) -> Job:
        spec = JobSpec(
            command=row["command"],
            args=tuple(json.loads(row["args"])),
            name=row["name"],
            resources=Resources(
                max_cpu=row["max_cpu"],
                cpu_cores=row["cpu_cores"],
                max_memory=row["max_memory"],
                max_iobps=row["max_iobps"],
                max_pids=row["max_pids"],
                max_disk=row["max_disk"],
            ),
            environment=json.loads(row["environment"]),
            secret_environment=opened_secrets(self._box, row["id"], row["secret_environment"]),
            network=row["network"],
            time_limit_seconds=row["time_limit_seconds"],
            schedule=_dt(row["scheduled_at"]),
            labels=json.loads(row["labels"]),
            replicas=row["replicas"],
            product=_product(row["product"]),
            volumes=tuple(json.loads(row["volumes"])),
            runtime_env=row["runtime_env"],
            uploads=tuple(json.loads(row["uploads"])),
            backend=row["backend"],
        )
        return Job(
            id=row["id"],
            owner=row["owner"],
            spec=spec,
            status=Status(row["status"]),
            created_at=datetime.fromisoformat(row["created_at"]),
            backend=row["backend"],
            reason=TerminationReason(row["reason"]) if row["reason"] else None,
            exit_code=row["exit_code"],
            started_at=_dt(row["started_at"]),
            ended_at=_dt(row["ended_at"]),
            backend_id=row["backend_id"],
            message=row["message"],
            updates=updates,
            expires_at=_dt(row["expires_at"]),
            usage=Usage(**json.loads(row["usage"])) if row["usage"] else None,
            suspended_seconds=row["suspended_seconds"],
            suspended_at=_dt(row["suspended_at"]),
            workflow_id=row["workflow_id"],
            project=row["project"],
            shared_with=tuple(json.loads(row["shared_with"])),
        )

    def close(self) -> None:
        self._db.close()
