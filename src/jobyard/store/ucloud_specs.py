"""What a UCloud create asked for (its JobSpecification), kept beside the native job.

The native record (store/sqlite.py) is the job; this is only the request as the client
wrote it, so that ``retrieve`` echoes it back as UCloud does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from jobyard.store.sqlite import transaction

_IN_CHUNK = 500


class SQLiteUcloudSpecs:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def put(self, job_id: str, specification: dict[str, Any]) -> None:
        with transaction(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO ucloud_specs (job_id, specification) VALUES (?, ?)",
                (job_id, json.dumps(specification)),
            )

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.get_many([job_id]).get(job_id)

    def get_many(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(job_ids)
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT job_id, specification FROM ucloud_specs WHERE job_id IN ({marks})",
                chunk,
            )
            out.update((row[0], json.loads(row[1])) for row in rows)
        return out
