"""Store.annotate and the mutable time limit, against both adapters."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument, NotFound, StaleTransition
from jobyard.domain.status import Status
from jobyard.store import MemoryStore, SQLiteStore, Store
from jobyard.store.base import JobQuery
from tests.unit.test_store import ID_A, T0, make_job

UNFINISHED = (Status.QUEUED, Status.RUNNING)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = SQLiteStore(tmp_path / "db") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


def test_annotate_sets_fields_and_appends_history_in_the_current_status(store: Store) -> None:
    store.create(make_job(ID_A))

    job = store.annotate(ID_A, "time limit extended by 60s", only_in=UNFINISHED,
                         time_limit_seconds=120.0, expires_at=T0)  # fmt: skip

    assert job.spec.time_limit_seconds == 120.0
    assert job.expires_at == T0
    assert job.status is Status.QUEUED
    assert job.message == "waiting in the queue"  # the latest status change, unchanged
    last = job.updates[-1]
    assert (last.status, last.message) == (Status.QUEUED, "time limit extended by 60s")
    assert store.get(ID_A) == job


def test_annotate_refuses_a_job_in_another_status_and_changes_nothing(store: Store) -> None:
    store.create(make_job(ID_A))
    store.transition(ID_A, Status.STOPPED, "stopped before it started")
    before = store.get(ID_A)

    with pytest.raises(StaleTransition, match="STOPPED"):
        store.annotate(ID_A, "extended", only_in=UNFINISHED, time_limit_seconds=5.0)

    assert store.get(ID_A) == before


def test_annotate_of_an_unknown_job_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.annotate(ID_A, "x", only_in=UNFINISHED)


def test_time_limit_may_be_set_by_update_and_transition(store: Store) -> None:
    store.create(make_job(ID_A))
    assert store.update(ID_A, time_limit_seconds=30.0).spec.time_limit_seconds == 30.0
    job = store.transition(ID_A, Status.INITIALIZING, "setting up", time_limit_seconds=45.0)
    assert job.spec.time_limit_seconds == 45.0
    assert store.get(ID_A).spec.time_limit_seconds == 45.0


def _ids(n: int) -> list[str]:
    return [f"cccc{i:04d}-0000-4000-8000-000000000000" for i in range(n)]


def test_query_pages_cover_every_job_once_newest_first(store: Store) -> None:
    ids = _ids(5)
    for job_id in ids:
        store.create(make_job(job_id))
    seen: list[str] = []
    token = ""
    for _ in range(5):
        page, token = store.query(JobQuery(page_size=2, page_token=token))
        seen += [j.id for j in page]
        if not token:
            break
    assert seen == ids[::-1]


def test_query_filters_then_pages(store: Store) -> None:
    ids = _ids(5)
    for i, job_id in enumerate(ids):
        store.create(make_job(job_id, status=Status.QUEUED if i % 2 else Status.RUNNING))
    query = JobQuery(statuses=frozenset({Status.RUNNING}), page_size=2)
    page, token = store.query(query)
    rest, end = store.query(dataclasses.replace(query, page_token=token))
    assert [j.id for j in (*page, *rest)] == [ids[4], ids[2], ids[0]]
    assert end == ""


def test_a_bad_page_token_is_invalid(store: Store) -> None:
    with pytest.raises(InvalidArgument, match="invalid page token"):
        store.query(JobQuery(page_token="nope"))
