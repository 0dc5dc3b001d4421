"""What the UCloud provider face keeps (migration 0016): Core's job ids beside jobyard's,
the durable outbox of ``jobs.control.update`` calls, and the journal of Core charges.

The outbox is fed from each job's durable history: a job's Core updates are a function of
its history (:func:`jobyard.http.provider.updates.core_updates`), and ``posted`` counts how
many of them are queued. Queuing new ones and advancing ``posted`` is one transaction, so
after a crash at any moment the next look at the job queues exactly what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from jobyard.domain.jobs import utcnow
from jobyard.store.sqlite import transaction

Json = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderJob:
    """A job UCloud/Core created: its id at Core, its id here, how many of its updates are
    queued, and whether the last of them (its end) is."""

    core_id: str
    job_id: str
    posted: int = 0
    final: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    core_id: str
    update: Json


class SQLiteProviderStore:
    """Provider jobs and the outbox, on the store's connection (migrations applied)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # -- Core's ids ----------------------------------------------------------------------

    def add(self, core_id: str, job_id: str) -> None:
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO provider_jobs (core_id, job_id, created_at) VALUES (?, ?, ?)",
                (core_id, job_id, utcnow().isoformat()),
            )

    def forget(self, core_id: str) -> None:
        """Drop a mapping whose job was never created (its create failed)."""
        with transaction(self._db):
            self._db.execute("DELETE FROM provider_jobs WHERE core_id = ?", (core_id,))

    def by_core_id(self, core_id: str) -> ProviderJob | None:
        return self._one("core_id", core_id)

    def by_job_id(self, job_id: str) -> ProviderJob | None:
        return self._one("job_id", job_id)

    def open_jobs(self) -> list[ProviderJob]:
        """Jobs whose end is not yet queued (what a restart must look at again)."""
        rows = self._db.execute(
            "SELECT core_id, job_id, posted, final FROM provider_jobs WHERE final = 0"
        )
        return [ProviderJob(r[0], r[1], r[2], bool(r[3])) for r in rows.fetchall()]

    def _one(self, column: str, value: str) -> ProviderJob | None:
        row = self._db.execute(
            f"SELECT core_id, job_id, posted, final FROM provider_jobs WHERE {column} = ?",
            (value,),
        ).fetchone()
        return None if row is None else ProviderJob(row[0], row[1], row[2], bool(row[3]))

    # -- the outbox ------------------------------------------------------------------------

    def post(self, core_id: str, updates: Sequence[Json], *, final: bool) -> int:
        """``updates`` are all of the job's Core updates so far (its history, in order):
        queue those not yet queued and record that all are; returns how many were queued.
        Safe with a stale view (fewer updates than are queued): nothing is queued twice."""
        with transaction(self._db):
            row = self._db.execute(
                "SELECT posted FROM provider_jobs WHERE core_id = ?", (core_id,)
            ).fetchone()
            if row is None:
                return 0
            fresh = list(updates[row[0] :])
            for update in fresh:
                self._queue(core_id, update)
            if fresh or final:
                self._db.execute(
                    "UPDATE provider_jobs SET posted = MAX(posted, ?), final = MAX(final, ?)"
                    " WHERE core_id = ?",
                    (len(updates), int(final), core_id),
                )
        return len(fresh)

    def post_extra(self, core_id: str, update: Json) -> None:
        """Queue one update outside the job's history (verify's answers)."""
        with transaction(self._db):
            self._queue(core_id, update)

    def _queue(self, core_id: str, update: Json) -> None:
        self._db.execute(
            "INSERT INTO core_outbox (core_id, body, created_at) VALUES (?, ?, ?)",
            (core_id, json.dumps(update), utcnow().isoformat()),
        )

    def pending(self, limit: int) -> list[OutboxItem]:
        """The oldest ``limit`` queued updates, in the order they were queued."""
        rows = self._db.execute(
            "SELECT seq, core_id, body FROM core_outbox ORDER BY seq LIMIT ?", (limit,)
        )
        return [OutboxItem(r[0], r[1], json.loads(r[2])) for r in rows.fetchall()]

    def acknowledged(self, upto_seq: int) -> None:
        """Core took every update up to ``upto_seq``: they leave the outbox."""
        with transaction(self._db):
            self._db.execute("DELETE FROM core_outbox WHERE seq <= ?", (upto_seq,))

    # -- the charge journal (accounting.core.CoreLedger) -----------------------------------

    def journal(self, rows: Sequence[tuple[str, str, str, int, int]]) -> None:
        """Record charges ``(charge_id, job_id, core_id, unit, periods)`` about to be sent
        (a charge already journalled keeps its row)."""
        now = utcnow().isoformat()
        with transaction(self._db):
            self._db.executemany(
                "INSERT OR IGNORE INTO core_charges (charge_id, job_id, core_id, unit, periods,"
                " at) VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, now) for row in rows],
            )

    def answered(self, outcomes: Sequence[tuple[str, str]]) -> None:
        """Record Core's answer ``(charge_id, outcome)`` of each charge."""
        with transaction(self._db):
            self._db.executemany(
                "UPDATE core_charges SET outcome = ? WHERE charge_id = ?",
                [(outcome, charge_id) for charge_id, outcome in outcomes],
            )

    def paid_units(self, job_id: str) -> int:
        """Units of the job Core took (charged, or a duplicate of a charge it took)."""
        row = self._db.execute(
            "SELECT MAX(unit) FROM core_charges WHERE job_id = ?"
            " AND outcome IN ('CHARGED', 'DUPLICATE')",
            (job_id,),
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1


__all__ = ["OutboxItem", "ProviderJob", "SQLiteProviderStore"]
