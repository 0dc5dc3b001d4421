"""Request ids of idempotent creates in SQLite (table ``request_keys``, migration 0006).

Shared by the job and workflow stores: a create records its request id in the transaction
that creates the job or workflow, so an answered create and its id are durable together.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from jobyard.domain.requests import Claimed, DuplicateRequest, RequestKey


def find_claim(db: sqlite3.Connection, owner: str, key: str, now: datetime) -> Claimed | None:
    """The unexpired use of ``key`` by ``owner``, if any."""
    row = db.execute(
        "SELECT fingerprint, result_id FROM request_keys"
        " WHERE owner = ? AND key = ? AND expires_at > ?",
        (owner, key, now.isoformat()),
    ).fetchone()
    return None if row is None else Claimed(row[0], row[1])


def insert_claim(
    db: sqlite3.Connection, request: RequestKey, result_id: str, now: datetime
) -> None:
    """Record ``request`` (inside the caller's transaction). Expired ids go first, this one's
    earlier use included: the table holds a day of creates, not every create ever. Raises
    sqlite3.IntegrityError when an unexpired use of the id exists."""
    purge_expired(db, now)  # through the expiry index: in a steady state a row or two
    db.execute(
        "INSERT INTO request_keys (owner, key, fingerprint, result_id, expires_at)"
        " VALUES (?,?,?,?,?)",
        (request.owner, request.key, request.fingerprint, result_id,
         request.expires_at.isoformat()),
    )  # fmt: skip


def duplicate(
    db: sqlite3.Connection, request: RequestKey, now: datetime
) -> DuplicateRequest | None:
    """After an IntegrityError: the DuplicateRequest to raise if it came from the request id
    (None if it came from something else, e.g. the job id)."""
    claimed = find_claim(db, request.owner, request.key, now)
    return None if claimed is None else DuplicateRequest(claimed)


def purge_expired(db: sqlite3.Connection, now: datetime) -> int:
    return db.execute("DELETE FROM request_keys WHERE expires_at <= ?", (now.isoformat(),)).rowcount
