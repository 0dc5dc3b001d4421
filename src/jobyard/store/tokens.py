"""Bearer tokens of the HTTP face: created once, stored hashed, listed and revoked.

A token is ``jy_`` + 43 url-safe characters (256 random bits). Only its SHA-256 is kept:
the database never holds a usable credential, and a lookup compares digests in constant
time. The token's name, role and project are the identity of whoever presents it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import sqlite3
from datetime import datetime

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument, NotFound, Unauthenticated
from jobyard.domain.jobs import utcnow
from jobyard.store.sqlite import transaction

TOKEN_PREFIX = "jy_"
SECRET_BYTES = 32  # 256 bits
MAX_TOKEN_CHARS = 128  # anything longer is not one of ours; refused before hashing
MAX_NAME_CHARS = 128


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    """A token's record; never its secret."""

    id: str
    name: str
    role: Role
    project: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def identity(self) -> Identity:
        return Identity(name=self.name, role=self.role, project=self.project)

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SQLiteTokens:
    """Tokens in the server's SQLite database (migration 0008)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def create(
        self, name: str, role: Role, *, project: str = "", expires_at: datetime | None = None
    ) -> tuple[Token, str]:
        """A new token and its secret: the only time the secret exists outside the client."""
        _check_name("name", name)
        if project:
            _check_name("project", project)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
        token = Token(
            id=secrets.token_hex(6),
            name=name,
            role=role,
            project=project,
            created_at=utcnow(),
            expires_at=expires_at,
            revoked_at=None,
        )
        with transaction(self._db):
            self._db.execute(
                "INSERT INTO tokens (id, name, role, project, secret_hash, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token.id, name, role.value, project, digest(secret),
                 token.created_at.isoformat(), _iso(expires_at)),
            )  # fmt: skip
        return token, secret

    def list(self) -> list[Token]:
        rows = self._db.execute("SELECT * FROM tokens ORDER BY created_at, id").fetchall()
        return [_token(row) for row in rows]

    def revoke(self, ref: str) -> Token:
        """Revoke by id, or by name when exactly one active token has it."""
        token = self._find(ref)
        with transaction(self._db):
            self._db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (utcnow().isoformat(), token.id),
            )
        return self._find(token.id)

    def authenticate(self, secret: str, now: datetime | None = None) -> Token:
        """The token ``secret`` belongs to; Unauthenticated saying why when none may be used."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_TOKEN_CHARS:
            raise Unauthenticated("invalid bearer token: not a jobyard token")
        wanted = digest(secret)
        row = self._db.execute("SELECT * FROM tokens WHERE secret_hash = ?", (wanted,)).fetchone()
        # The row was found by its digest; compare again in constant time all the same, so
        # that no code path depends on how much of a digest matched.
        if row is None or not hmac.compare_digest(row["secret_hash"], wanted):
            raise Unauthenticated("invalid bearer token: no such token")
        token = _token(row)
        state = token.state(now or utcnow())
        if state == "revoked":
            raise Unauthenticated(f"bearer token revoked: {token.id} ({token.name})")
        if state == "expired":
            raise Unauthenticated(f"bearer token expired: {token.id} ({token.name})")
        return token

    def _find(self, ref: str) -> Token:
        row = self._db.execute("SELECT * FROM tokens WHERE id = ?", (ref,)).fetchone()
        if row is not None:
            return _token(row)
        rows = self._db.execute(
            "SELECT * FROM tokens WHERE name = ? AND revoked_at IS NULL", (ref,)
        ).fetchall()
        if len(rows) > 1:
            raise InvalidArgument(f"several active tokens are named {ref!r}: give the token id")
        if not rows:
            raise NotFound(f"token not found: {ref}")
        return _token(rows[0])


def _check_name(what: str, value: str) -> None:
    if (
        not value
        or len(value) > MAX_NAME_CHARS
        or not value.isprintable()
        or value != value.strip()
    ):
        raise InvalidArgument(
            f"invalid token {what} {value!r}: 1-{MAX_NAME_CHARS} printable characters, "
            "no leading or trailing spaces"
        )


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _token(row: sqlite3.Row) -> Token:
    return Token(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        project=row["project"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=_dt(row["expires_at"]),
        revoked_at=_dt(row["revoked_at"]),
    )


__all__ = ["SQLiteTokens", "Token", "digest"]
