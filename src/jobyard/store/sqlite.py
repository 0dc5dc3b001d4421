"""SQLiteStore: the embedded default store (WAL, versioned migrations, group commit).

The event loop never waits on the disk. The store keeps the records of live jobs (every
job not yet ended, and any job with a change not yet committed) in memory: a change is
checked (compare-and-set against the transition table) and applied there at once, and
its SQL is queued to the one writer thread (:mod:`jobyard.store.writer`), which commits
whatever is queued in one transaction, one fsync for many jobs' changes, in order.
Callers that answer a client only once a change is durable (RunJob, stop) await
:meth:`SQLiteStore.committed`; with ``synchronous=FULL`` an answered RunJob survives a
``kill -9`` of the server at any moment. Reads come from memory, or for ended jobs and
pages of history from the database on a separate read connection (WAL: never blocked by
the writer). The engine is the only writer of job records (one process, one event loop).
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import dataclasses
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jobyard.domain.access import Scope
from jobyard.domain.errors import (
    DataDiskFull,
    InvalidArgument,
    NotFound,
    StaleTransition,
    StoreError,
    job_not_found,
)
from jobyard.domain.jobs import Job, JobSpec, ProductRef, Resources, StatusUpdate, Usage, utcnow
from jobyard.domain.requests import Claimed, DuplicateRequest, RequestKey
from jobyard.domain.status import TERMINAL, Status, TerminationReason, predecessors
from jobyard.store.base import JobQuery, check_fields
from jobyard.store.records import annotated, created, transitioned, with_fields
from jobyard.store.requests import find_claim, insert_claim, purge_expired
from jobyard.store.sealing import (
    ERASED_SECRETS_SQL,
    SecretBox,
    opened_secrets,
    seal_plaintext,
    sealed_secrets,
)
from jobyard.store.writer import BatchWriter

log = logging.getLogger("jobyard.store")

BUSY_TIMEOUT_MS = 5000
ID_CHARS = 36  # a whole UUID
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
        names = scope.principals(edit=False)
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


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the store's settings (WAL, durable commits, foreign keys)."""
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=ObservedConnection
    )
    db.row_factory = sqlite3.Row
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    # Freed space is zeroed: an erased secret's ciphertext does not linger in free pages.
    db.execute("PRAGMA secure_delete = ON")
    return db


class SQLiteStore:
    """Store adapter over one SQLite file: live records in memory, one writer thread."""

    def __init__(self, path: Path, box: SecretBox | None = None) -> None:
        # Seals secret environments at rest (the server passes its key file's); without one
        # (tests, tools such as `jobyard tokens`) a key that lives only as long as this store.
        self._box = box or SecretBox.ephemeral()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = connect(path)  # reads (and the workflow store), on the caller's thread
        path.chmod(0o600)
        self._migrate()
        purge_expired(self._db, utcnow())
        if box is not None:  # never seal under a key that dies with this store (tools)
            seal_plaintext(self._db, self._box, (s.value for s in TERMINAL))
        self._lock = threading.RLock()  # the live records, against the writer settling
        self._live: dict[str, Job] = {}  # every unended job, and any with a change queued
        self._seqs: dict[str, int] = {}  # their seq (creation order, the paging key)
        self._pending: collections.Counter[str] = collections.Counter()
        self._stale: set[str] = set()  # a change failed: reload from the database
        self._deleted: set[str] = set()  # deleted, the delete not yet committed
        self._claims: dict[tuple[str, str], tuple[RequestKey, str]] = {}  # not yet committed
        row = self._db.execute("SELECT MAX(seq) FROM jobs").fetchone()
        self._next_seq = int(row[0] or 0) + 1
        self._load_live()
        self.writer = BatchWriter(functools.partial(connect, path), name="jobs")
        # Whoever observes this store's commits (metrics, on ``connection.on_commit``) hears
        # the writer thread's too.
        self.writer.on_commit = self._observe_commit

    def _observe_commit(self, seconds: float) -> None:
        observer = getattr(self._db, "on_commit", None)
        if observer is not None:
            observer(seconds)

    def _load_live(self) -> None:
        unended = [s.value for s in Status if s not in TERMINAL]
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE status IN ({','.join('?' * len(unended))}) ORDER BY seq",
            unended,
        ).fetchall()
        for row, job in zip(rows, self._jobs(rows), strict=True):
            self._live[job.id] = job
            self._seqs[job.id] = row["seq"]

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
        with self._lock:  # every unended job is live; the database has the ended ones
            for job in self._live.values():
                counts[job.status] += 1
            shadowed = [i for i, j in self._live.items() if j.status.terminal] + [*self._deleted]
        ended = [s.value for s in TERMINAL]
        sql = (
            f"SELECT status, COUNT(*) FROM jobs WHERE status IN ({','.join('?' * len(ended))})"
            f" AND id NOT IN ({','.join('?' * len(shadowed))}) GROUP BY status"
        )
        for status, count in self._db.execute(sql, [*ended, *shadowed]):
            counts[Status(status)] += count
        return counts

    def create(self, job: Job, request: RequestKey | None = None) -> None:
        now = utcnow()
        with self._lock:
            if job.id in self._live or (job.id not in self._deleted and self._stored(job.id)):
                raise InvalidArgument(f"job {job.id} exists")
            if request is not None:
                if (taken := self.claimed(request.owner, request.key, now)) is not None:
                    raise DuplicateRequest(taken)
                self._claims[(request.owner, request.key)] = (request, job.id)
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            self._keep(created(job), seq)
        row = {"seq": seq, **self._row(job)}
        first = (job.created_at, job.status, job.message)
        claim = None if request is None else (request, job.id, now)
        self._write(job.id, functools.partial(_insert_job, row, first, claim))

    def claimed(self, owner: str, key: str, now: datetime) -> Claimed | None:
        with self._lock:
            pending = self._claims.get((owner, key))
        if pending is not None and pending[0].expires_at > now:
            return Claimed(pending[0].fingerprint, pending[1])
        return find_claim(self._db, owner, key, now)

    def committed(self) -> Awaitable[None]:
        return asyncio.wrap_future(self.writer.barrier())

    def flush(self) -> None:
        """Block until every change made so far is committed (or has failed)."""
        self.writer.flush()

    def _stored(self, job_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is not None

    def _keep(self, job: Job, seq: int) -> None:
        """Hold ``job`` as the live record (caller holds the lock)."""
        self._live[job.id] = job
        self._seqs[job.id] = seq

    def _write(self, job_id: str, change: Callable[[sqlite3.Connection], None]) -> None:
        """Queue ``change`` of ``job_id``; the record stays live until it is committed."""
        with self._lock:
            self._pending[job_id] += 1
        try:
            self.writer.submit(change, functools.partial(self._settled, job_id))
        except StoreError as exc:  # closed: the change is not taken
            self._settled(job_id, exc)
            raise

    def _settled(self, job_id: str, error: BaseException | None) -> None:
        """A change of ``job_id`` was committed or failed (in the writer thread)."""
        if error is not None:
            log.error("job change not stored | jobId=%s error=%s", job_id, error)
        with self._lock:
            if error is not None:
                self._stale.add(job_id)
            self._pending[job_id] -= 1
            if self._pending[job_id] > 0:
                return
            del self._pending[job_id]
            self._deleted.discard(job_id)
            self._forget_claims(job_id)
            job = self._live.get(job_id)
            if job is not None and job.status.terminal and job_id not in self._stale:
                del self._live[job_id], self._seqs[job_id]

    def _forget_claims(self, job_id: str) -> None:
        """The job's request id is stored (or its create failed): drop the pending one."""
        for owner_key, (_, result_id) in list(self._claims.items()):
            if result_id == job_id:
                del self._claims[owner_key]

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

    def get(self, job_id: str) -> Job:
        return self._current(job_id)[0]

    def _current(self, job_id: str) -> tuple[Job, int]:
        """The job's latest record and seq: live, else stored (raises NotFound)."""
        with self._lock:
            if job_id in self._deleted:
                raise job_not_found(job_id)
            if job_id in self._stale and not self._pending[job_id]:
                self._stale.discard(job_id)  # the database has the truth again
                self._live.pop(job_id, None)
            if job_id in self._live:
                return self._live[job_id], self._seqs[job_id]
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise job_not_found(job_id)
            job = self._jobs([row])[0]
            if not job.status.terminal:  # reloaded after a failed change
                self._keep(job, row["seq"])
            return job, row["seq"]

    def ids_with_prefix(self, prefix: str, limit: int, scope: Scope | None = None) -> list[str]:
        if len(prefix) == ID_CHARS:  # a whole id: one lookup, not a scan with LIKE
            try:
                job = self.get(prefix)
            except NotFound:
                return []
            return [job.id] if limit > 0 and (scope is None or scope.admits(job)) else []
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        scoped, params = scope_sql(scope, shared=True)
        found = self._select(
            ["id LIKE ? ESCAPE '\\'", scoped], [escaped + "%", *params],
            keep=lambda j: j.id.startswith(prefix) and (scope is None or scope.admits(j)),
            limit=limit, newest_first=False,
        )  # fmt: skip
        return [job.id for _, job in found]

    def list(self, statuses: Iterable[Status] | None = None, limit: int | None = None) -> list[Job]:
        wanted = None if statuses is None else frozenset(statuses)
        if wanted is not None and not wanted & TERMINAL:
            with self._lock:  # every unended job is live: no need to ask the database
                live = sorted(
                    (self._seqs[i], j) for i, j in self._live.items() if j.status in wanted
                )
            return [job for _, job in live[:limit]]
        where, params = builtins.list[str](), builtins.list[Any]()
        if wanted is not None:
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            params += [s.value for s in wanted]
        found = self._select(where, params, keep=lambda j: wanted is None or j.status in wanted,
                             limit=limit, newest_first=False)  # fmt: skip
        return [job for _, job in found]

    def _select(
        self,
        where: builtins.list[str],
        params: builtins.list[Any],
        *,
        keep: Callable[[Job], bool],
        limit: int | None,
        newest_first: bool,
        before_seq: int | None = None,
    ) -> builtins.list[tuple[int, Job]]:
        """(seq, job) of the jobs matching both ``where`` (stored) and ``keep`` (live), in
        seq order: live records where they exist, stored rows for every other job."""
        with self._lock:
            shadowed = set(self._live) | self._deleted
            live = [(self._seqs[i], j) for i, j in self._live.items() if keep(j)]
        if before_seq is not None:
            live = [(seq, j) for seq, j in live if seq < before_seq]
            where = [*where, "seq < ?"]
            params = [*params, before_seq]
        order = "DESC" if newest_first else ""
        wanted = -1 if limit is None else limit + len(shadowed)
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(where) or '1 = 1'} ORDER BY seq {order}"
        rows = self._db.execute(f"{sql} LIMIT ?", [*params, wanted]).fetchall()
        rows = [r for r in rows if r["id"] not in shadowed][:limit]  # only these are read
        stored = [(r["seq"], j) for r, j in zip(rows, self._jobs(rows), strict=True)]
        merged = sorted(live + stored, key=lambda pair: pair[0], reverse=newest_first)
        return merged if limit is None else merged[:limit]

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
        found = self._select(where, params, keep=query.matches, limit=query.page_size + 1,
                             newest_first=True, before_seq=query.after_seq())  # fmt: skip
        more = len(found) > query.page_size
        found = found[: query.page_size]
        token = str(found[-1][0]) if more and found else ""
        return [job for _, job in found], token

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._current(job_id)  # raises NotFound
            self._live.pop(job_id, None)
            self._seqs.pop(job_id, None)
            self._deleted.add(job_id)
        self._write(job_id, functools.partial(_delete_job, job_id))

    def _change(self, job_id: str, apply: Callable[[Job], Job]) -> Job:
        """Compare-and-set in memory: ``apply`` to the latest record (it may raise
        StaleTransition), keep the result live until its SQL is committed."""
        with self._lock:
            current, seq = self._current(job_id)
            job = apply(current)
            self._keep(job, seq)
        return job

    def transition(self, job_id: str, new: Status, message: str, **fields: Any) -> Job:
        check_fields(fields)
        now = utcnow()
        job = self._change(job_id, lambda j: transitioned(j, new, message, fields, now))
        change = functools.partial(_set_status, job_id, new, message, _columns(fields), now)
        self._write(job_id, change)
        return job

    def update(self, job_id: str, **fields: Any) -> Job:
        check_fields(fields)
        job = self._change(job_id, lambda j: with_fields(j, fields))
        if fields:
            self._write(job_id, functools.partial(_set_fields, job_id, _columns(fields)))
        return job

    def annotate(
        self, job_id: str, message: str, *, only_in: Iterable[Status], **fields: Any
    ) -> Job:
        check_fields(fields)
        now, allowed = utcnow(), frozenset(only_in)
        job = self._change(job_id, lambda j: annotated(j, message, allowed, fields, now))
        change = functools.partial(
            _annotate, job_id, message, _columns(fields), allowed, job.status, now
        )
        self._write(job_id, change)
        return job

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
        """Commit what is queued, then close."""
        self.writer.close()
        self._db.close()


# -- the SQL of each change, run in the writer thread ------------------------------------------


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


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: _column(value) for name, value in fields.items()}


def _add_update(
    db: sqlite3.Connection, job_id: str, at: datetime, status: Status, message: str
) -> None:
    db.execute(
        "INSERT INTO job_updates (job_id, at, status, message) VALUES (?,?,?,?)",
        (job_id, _ts(at), status.value, message),
    )


def _insert_job(
    row: dict[str, Any],
    first: tuple[datetime, Status, str],
    claim: tuple[RequestKey, str, datetime] | None,
    db: sqlite3.Connection,
) -> None:
    """The job, its first history entry and its request id, in one change."""
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    db.execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", list(row.values()))
    _add_update(db, row["id"], *first)
    if claim is not None:
        insert_claim(db, *claim)


def _set_status(
    job_id: str,
    new: Status,
    message: str,
    columns: dict[str, Any],
    at: datetime,
    db: sqlite3.Connection,
) -> None:
    """The compare-and-set again in SQL: it cannot fail unless the database and the live
    record disagree (another process wrote the file)."""
    allowed = [s.value for s in predecessors(new)]
    sets = ", ".join(f"{k} = ?" for k in ("status", *columns))
    if new.terminal:  # the job needs its secrets no more: erase them in the same commit
        sets += f", secret_environment = {ERASED_SECRETS_SQL}"
    marks = ",".join("?" * len(allowed))
    cur = db.execute(
        f"UPDATE jobs SET {sets}, message = ? WHERE id = ? AND status IN ({marks})",
        [new.value, *columns.values(), message, job_id, *allowed],
    )
    if cur.rowcount != 1:
        raise StaleTransition(f"job {job_id}: the stored job cannot go to {new}")
    _add_update(db, job_id, at, new, message)


def _set_fields(job_id: str, columns: dict[str, Any], db: sqlite3.Connection) -> None:
    sets = ", ".join(f"{k} = ?" for k in columns)
    cur = db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*columns.values(), job_id])
    if cur.rowcount != 1:
        raise job_not_found(job_id)


def _annotate(
    job_id: str,
    message: str,
    columns: dict[str, Any],
    only_in: frozenset[Status],
    status: Status,
    at: datetime,
    db: sqlite3.Connection,
) -> None:
    allowed = [s.value for s in only_in]
    sets = ", ".join(f"{k} = ?" for k in columns) or "id = id"
    marks = ",".join("?" * len(allowed))
    cur = db.execute(
        f"UPDATE jobs SET {sets} WHERE id = ? AND status IN ({marks})",
        [*columns.values(), job_id, *allowed],
    )
    if cur.rowcount != 1:
        raise StaleTransition(f"job {job_id}: the stored job is not in {sorted(allowed)}")
    _add_update(db, job_id, at, status, message)


def _delete_job(job_id: str, db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM job_updates WHERE job_id = ?", (job_id,))
    db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
