"""SQLiteResourceStore: volumes, networks and runtimes, in the same database as jobs."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.resources import Network, RuntimeInfo, Volume
from jobyard.store.sqlite import transaction


class SQLiteResourceStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _insert(self, table: str, what: str, row: dict[str, object]) -> None:
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})"
        try:
            with transaction(self._db):
                self._db.execute(sql, list(row.values()))
        except sqlite3.IntegrityError as exc:
            raise InvalidArgument(f"{what} {row['name']} exists already") from exc

    def _delete(self, table: str, name: str) -> None:
        with transaction(self._db):
            self._db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))

    # -- volumes ---------------------------------------------------------------------------

    def add_volume(self, v: Volume) -> None:
        self._insert("volumes", "volume", {
            "name": v.name, "owner": v.owner, "project": v.project, "type": v.type,
            "size_bytes": v.size_bytes, "created_at": v.created_at.isoformat(),
        })  # fmt: skip

    def volumes(self) -> list[Volume]:
        rows = self._db.execute("SELECT * FROM volumes ORDER BY name").fetchall()
        return [
            Volume(r["name"], r["owner"], r["project"], r["type"], r["size_bytes"],
                   datetime.fromisoformat(r["created_at"]))
            for r in rows
        ]  # fmt: skip

    def remove_volume(self, name: str) -> None:
        self._delete("volumes", name)

    # -- networks --------------------------------------------------------------------------

    def add_network(self, n: Network) -> None:
        self._insert("networks", "network", {
            "name": n.name, "owner": n.owner, "project": n.project, "cidr": n.cidr,
            "bridge": n.bridge, "created_at": n.created_at.isoformat(),
        })  # fmt: skip

    def networks(self) -> list[Network]:
        rows = self._db.execute("SELECT * FROM networks ORDER BY name").fetchall()
        return [
            Network(r["name"], r["owner"], r["project"], r["cidr"], r["bridge"],
                    datetime.fromisoformat(r["created_at"]))
            for r in rows
        ]  # fmt: skip

    def remove_network(self, name: str) -> None:
        self._delete("networks", name)

    # -- runtimes --------------------------------------------------------------------------

    def add_runtime(self, r: RuntimeInfo) -> None:
        self._insert("runtimes", "runtime", {
            "name": r.name, "language": r.language, "version": r.version,
            "description": r.description, "packages": json.dumps(list(r.packages)),
            "test": json.dumps(list(r.test)), "size_bytes": r.size_bytes,
            "created_at": r.created_at.isoformat(),
        })  # fmt: skip

    def runtimes(self) -> list[RuntimeInfo]:
        rows = self._db.execute("SELECT * FROM runtimes ORDER BY name").fetchall()
        return [
            RuntimeInfo(r["name"], r["language"], r["version"], r["description"],
                        tuple(json.loads(r["packages"])), tuple(json.loads(r["test"])),
                        r["size_bytes"], datetime.fromisoformat(r["created_at"]))
            for r in rows
        ]  # fmt: skip

    def remove_runtime(self, name: str) -> None:
        self._delete("runtimes", name)
