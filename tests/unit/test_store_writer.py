"""The store's writer thread: group commit, order, and how failures reach the waiters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.domain.errors import DataDiskFull, StoreError
from jobyard.domain.status import Status
from jobyard.store import SQLiteStore
from jobyard.store.writer import BatchWriter
from tests.unit.test_store import make_job

WAIT_SECONDS = 10.0


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    db = connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE t (n INTEGER)")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    db.close()
    return path


@pytest.fixture
def writer(db_path: Path) -> Iterator[BatchWriter]:
    def connect_with_fks() -> sqlite3.Connection:
        db = connect(db_path)
        db.execute("PRAGMA foreign_keys = ON")
        return db

    w = BatchWriter(connect_with_fks)
    yield w
    w.close()


def insert(n: int) -> object:
    return lambda db: db.execute("INSERT INTO t VALUES (?)", (n,)).lastrowid


def stored(db_path: Path, table: str = "t") -> list[int]:
    db = connect(db_path)
    try:
        return [r[0] for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        db.close()


def hold_the_writer(writer: BatchWriter) -> threading.Event:
    """Queue a change that blocks the writer thread until the returned event is set, so
    that what is queued meanwhile waits for the next batch."""
    running, release = threading.Event(), threading.Event()

    def block(db: sqlite3.Connection) -> None:
        running.set()
        release.wait(WAIT_SECONDS)

    writer.submit(block)
    assert running.wait(WAIT_SECONDS)
    return release


def test_changes_queued_together_share_one_commit(writer: BatchWriter, db_path: Path) -> None:
    release = hold_the_writer(writer)
    futures = [writer.submit(insert(n)) for n in range(50)]
    release.set()
    concurrent.futures.wait(futures, WAIT_SECONDS)
    assert [f.result() for f in futures] == list(range(1, 51))  # each change's own result
    assert writer.commits == 2  # the holding batch, then all 50 in one
    assert stored(db_path) == list(range(50))


def test_changes_are_stored_in_the_order_they_were_queued(
    writer: BatchWriter, db_path: Path
) -> None:
    futures = []
    for n in range(200):
        futures.append(writer.submit(insert(n)))
        if n % 37 == 0:  # some batches end here, others go on
            concurrent.futures.wait(futures, WAIT_SECONDS)
    writer.flush()
    assert stored(db_path) == list(range(200))
    assert writer.commits < 200


def test_a_change_that_fails_fails_alone(writer: BatchWriter, db_path: Path) -> None:
    release = hold_the_writer(writer)

    def bad(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (-1)")
        raise ValueError("refused by the change itself")

    first, failing, last = writer.submit(insert(1)), writer.submit(bad), writer.submit(insert(2))
    release.set()
    with pytest.raises(ValueError, match="refused by the change itself"):
        failing.result(WAIT_SECONDS)
    assert (first.result(WAIT_SECONDS), last.result(WAIT_SECONDS)) == (1, 2)
    assert stored(db_path) == [1, 2]  # the failed change's own insert was rolled back


def test_a_failed_commit_fails_every_change_of_its_batch(
    writer: BatchWriter, db_path: Path
) -> None:
    release = hold_the_writer(writer)
    settled: list[BaseException | None] = []
    ok = writer.submit(insert(1), settled.append)
    # A deferred foreign key is checked at COMMIT: the whole transaction is refused.
    orphan = writer.submit(lambda db: db.execute("INSERT INTO child VALUES (42)"))
    release.set()
    for future in (ok, orphan):
        with pytest.raises(StoreError, match="the database did not take the change: FOREIGN"):
            future.result(WAIT_SECONDS)
    assert len(settled) == 1 and isinstance(settled[0], StoreError)  # told before waiters
    assert stored(db_path) == [] and stored(db_path, "child") == []
    assert writer.submit(insert(3)).result(WAIT_SECONDS) is not None  # the writer goes on
    assert stored(db_path) == [3]


def test_a_closed_writer_commits_what_was_queued_and_refuses_more(
    writer: BatchWriter, db_path: Path
) -> None:
    release = hold_the_writer(writer)
    queued = writer.submit(insert(7))
    release.set()
    writer.close()
    assert queued.done() and stored(db_path) == [7]
    with pytest.raises(StoreError, match="closed"):
        writer.submit(insert(8))


def test_concurrent_submits_share_commits_and_are_durable_once_committed(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    ids = [f"cccc{n:04d}-0000-4000-8000-000000000000" for n in range(100)]

    async def submit(job_id: str) -> None:
        await asyncio.sleep(0)  # the tasks interleave, as RunJobs do
        store.create(make_job(job_id))
        await store.committed()

    async def main() -> None:
        await asyncio.gather(*(submit(i) for i in ids))

    try:
        asyncio.run(main())
        assert store.writer.commits < len(ids)
        other = SQLiteStore(tmp_path / "jobs.db")  # what a restarted server reads
        try:
            assert {job.id for job in other.list()} == set(ids)
        finally:
            other.close()
    finally:
        store.close()


def test_a_change_is_read_at_once_and_stored_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    job_id = "dddd0000-0000-4000-8000-000000000000"
    store = SQLiteStore(path)
    try:
        release = hold_the_writer(store.writer)
        store.create(make_job(job_id))
        assert store.get(job_id).status is Status.QUEUED
        assert [j.id for j in store.list()] == [job_id]
        assert store.ids_with_prefix("dddd", 2) == [job_id]
        assert stored(path, "jobs") == []  # queued behind the held batch
        release.set()
        store.flush()
        assert stored(path, "jobs") == [1]  # its seq
        store.transition(job_id, Status.STOPPED, "stopped before it started")
        store.flush()  # an ended job leaves memory; it is read from the database
        job = store.get(job_id)
        assert [u.status for u in job.updates] == [Status.QUEUED, Status.STOPPED]
        assert [j.status for j in store.list([Status.STOPPED])] == [Status.STOPPED]
    finally:
        store.close()


def fill_the_disk(writer: BatchWriter, db_path: Path) -> None:
    """From now on the writer's database cannot grow: SQLite answers SQLITE_FULL, as on a
    full data disk."""
    db = connect(db_path)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    writer.submit(lambda db: db.execute(f"PRAGMA max_page_count = {pages}")).result(WAIT_SECONDS)


def big_insert(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO t VALUES (?)", (1,))
    db.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
    db.execute("INSERT INTO filler VALUES (zeroblob(100000))")


def test_a_full_disk_fails_the_batch_with_data_disk_full(
    writer: BatchWriter, db_path: Path
) -> None:
    fill_the_disk(writer, db_path)
    release = hold_the_writer(writer)
    futures = [writer.submit(insert(1)), writer.submit(big_insert)]
    release.set()
    for future in futures:
        with pytest.raises(DataDiskFull, match="the data disk is full"):
            future.result(WAIT_SECONDS)
    assert stored(db_path) == []


def test_a_batch_that_met_a_full_disk_is_tried_again_once_room_is_freed(
    writer: BatchWriter, db_path: Path
) -> None:
    fill_the_disk(writer, db_path)
    freed = threading.Event()

    def free_room() -> bool:  # as the data disk's reserve file is deleted
        freed.set()
        return True

    def room(db: sqlite3.Connection) -> None:
        if freed.is_set():
            db.execute("PRAGMA max_page_count = 1073741823")

    writer.on_full = free_room
    release = hold_the_writer(writer)
    futures = [writer.submit(room), writer.submit(insert(5)), writer.submit(big_insert)]
    release.set()
    concurrent.futures.wait(futures, WAIT_SECONDS)
    assert [f.exception() for f in futures] == [None, None, None]
    assert freed.is_set() and stored(db_path) == [5, 1]
