"""A full data disk is RESOURCE_EXHAUSTED however it surfaces, never a bare INTERNAL."""

from __future__ import annotations

import errno
import sqlite3

import grpc
import pytest

from jobyard.api.errors import code_for, disk_full


def sqlite_full() -> sqlite3.OperationalError:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (x BLOB)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    try:
        db.execute("INSERT INTO t VALUES (zeroblob(1000000))")
    except sqlite3.OperationalError as exc:
        return exc
    raise AssertionError("SQLite did not fill up")


@pytest.mark.parametrize(
    "exc",
    [OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EDQUOT, "quota"),
     sqlite_full()],
)  # fmt: skip
def test_a_full_disk_is_resource_exhausted(exc: BaseException) -> None:
    full = disk_full(exc)
    assert full is not None and code_for(full) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(full).startswith("the data disk is full: ")


@pytest.mark.parametrize(
    "exc", [OSError(errno.EIO, "I/O error"), sqlite3.OperationalError("no such table"), KeyError()]
)
def test_other_errors_are_not_taken_for_a_full_disk(exc: BaseException) -> None:
    assert disk_full(exc) is None
