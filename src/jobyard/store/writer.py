"""BatchWriter: one thread that owns a SQLite write connection and group-commits.

Callers queue changes (functions of the connection); the thread takes whatever is queued,
runs it in one transaction and commits once, so many jobs' changes share one fsync. Order
is kept: changes run in the order they were queued, one batch after another. Each change
runs under its own savepoint, so one that raises (its future gets that error) leaves the
rest of its batch in; a COMMIT that fails fails every change of the batch with a
:class:`StoreError` (:class:`DataDiskFull` when the disk is full: the batch is tried once
more after :attr:`BatchWriter.on_full` freed room, e.g. the data disk's reserve). Nothing
here touches an event loop: futures are :class:`concurrent.futures.Future`, awaited
through :func:`asyncio.wrap_future`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from jobyard.domain.errors import DataDiskFull, JobyardError, StoreError

log = logging.getLogger("jobyard.store")

MAX_BATCH_CHANGES = 1000  # bounds one transaction's size (and its commit's latency)
CLOSE_TIMEOUT_SECONDS = 30.0

Change = Callable[[sqlite3.Connection], Any]
Settled = Callable[[BaseException | None], None]


@dataclasses.dataclass(slots=True)
class _Queued:
    change: Change
    future: concurrent.futures.Future[Any]
    settled: Settled | None


class BatchWriter:
    """Runs queued changes on one connection in its own thread, many per commit."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str = "store") -> None:
        self._connect = connect
        self._queue: collections.deque[_Queued] = collections.deque()
        self._wake = threading.Condition()
        self._closing = False
        self._last: concurrent.futures.Future[Any] = _done()
        self.commits = 0  # batches committed: for tests and figures
        # Called (in the writer thread) when a batch met a full disk: True if it freed room,
        # and the batch is tried once more.
        self.on_full: Callable[[], bool] | None = None
        self.on_commit: Callable[[float], None] | None = None  # seconds each COMMIT took
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"{name}-writer", daemon=True
        )
        self._thread.start()
        ready.result()  # the connection opened (or its error, raised here)

    def submit(
        self, change: Change, settled: Settled | None = None
    ) -> concurrent.futures.Future[Any]:
        """Queue ``change``; its future holds its result once its batch is committed.

        ``settled`` is called (in the writer thread) with the change's error or None
        before the future is resolved, so that whoever waits for it sees its effects.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._wake:
            if self._closing:
                raise StoreError("the store is closed")
            self._queue.append(_Queued(change, future, settled))
            self._last = future
            self._wake.notify()
        return future

    def barrier(self) -> concurrent.futures.Future[Any]:
        """The future of the change queued last: done once everything queued so far is."""
        with self._wake:
            return self._last

    def flush(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Block until everything queued so far is committed (or has failed)."""
        concurrent.futures.wait([self.barrier()], timeout)

    def close(self) -> None:
        """Commit what is queued, then stop the thread and close its connection."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(CLOSE_TIMEOUT_SECONDS)

    # -- the thread -------------------------------------------------------------------

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            db = self._connect()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            while batch := self._next_batch():
                self._commit(db, batch)
        finally:
            db.close()

    def _next_batch(self) -> list[_Queued]:
        """Everything queued (up to MAX_BATCH_CHANGES); [] once closing with nothing left."""
        with self._wake:
            while not self._queue and not self._closing:
                self._wake.wait()
            count = min(len(self._queue), MAX_BATCH_CHANGES)
            return [self._queue.popleft() for _ in range(count)]

    def _commit(self, db: sqlite3.Connection, batch: list[_Queued]) -> None:
        try:
            outcomes = self._transaction(db, batch)
        except Exception as exc:
            retry = _disk_full(exc) and self.on_full is not None and self.on_full()
            outcomes = self._retried(db, batch, exc) if retry else _failed(batch, exc)
        else:
            self.commits += 1
        for queued, (ok, value) in zip(batch, outcomes, strict=True):
            _resolve(queued, None if ok else value, value)

    def _retried(
        self, db: sqlite3.Connection, batch: list[_Queued], first: Exception
    ) -> list[tuple[bool, Any]]:
        log.warning("store commit met a full disk: room freed, trying again | error=%s", first)
        try:
            outcomes = self._transaction(db, batch)
        except Exception as exc:
            return _failed(batch, exc)
        self.commits += 1
        return outcomes

    def _transaction(self, db: sqlite3.Connection, batch: list[_Queued]) -> list[tuple[bool, Any]]:
        """Every change of ``batch`` in one transaction: their outcomes, once committed."""
        try:
            db.execute("BEGIN IMMEDIATE")
            outcomes = [_run_change(db, queued.change) for queued in batch]
            started = time.perf_counter()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started)
        return outcomes


def _failed(batch: list[_Queued], exc: Exception) -> list[tuple[bool, Any]]:
    log.error("store commit failed | changes=%d error=%s", len(batch), exc)
    failure: JobyardError
    if _disk_full(exc):
        failure = DataDiskFull("the data disk is full: the job store cannot record the change")
    else:
        failure = StoreError(f"the database did not take the change: {exc}")
    return [(False, failure)] * len(batch)


def _disk_full(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code == sqlite3.SQLITE_FULL


def _run_change(db: sqlite3.Connection, change: Change) -> tuple[bool, Any]:
    """Run one change under a savepoint: (True, result), or (False, its error) rolled back."""
    db.execute("SAVEPOINT change")
    try:
        result = change(db)
    except Exception as exc:
        if _disk_full(exc):
            raise  # not this change's fault: the whole batch waits for room
        db.execute("ROLLBACK TO change")
        db.execute("RELEASE change")
        return False, exc
    db.execute("RELEASE change")
    return True, result


def _resolve(queued: _Queued, error: BaseException | None, result: Any) -> None:
    if queued.settled is not None:
        try:
            queued.settled(error)
        except Exception:  # a bug there must not leave the waiters hanging
            log.exception("store change settling failed")
    if error is None:
        queued.future.set_result(result)
    else:
        queued.future.set_exception(error)


def _done() -> concurrent.futures.Future[Any]:
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_result(None)
    return future
