"""The Store port, checked against both adapters (SQLite and the in-memory fake)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobyard.domain.access import Scope
from jobyard.domain.errors import (
    DataDiskFull,
    InvalidArgument,
    JobyardError,
    NotFound,
    StaleTransition,
)
from jobyard.domain.jobs import Job, JobSpec, ProductRef, Resources
from jobyard.domain.status import Status, TerminationReason
from jobyard.store import MemoryStore, SQLiteStore, Store, resolve_id
from jobyard.store.base import JobQuery, find_job
from jobyard.store.sealing import SecretBox
from jobyard.store.sqlite import _migrations

LATEST_SCHEMA = max(v for v, _ in _migrations())

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_job(job_id: str, *, status: Status = Status.QUEUED, **changes: object) -> Job:
    spec = JobSpec(
        command="python3",
        args=("-c", "print('hé')", ""),
        name="build-1",
        resources=Resources(
            max_cpu=150,
            cpu_cores="0-1",
            max_memory=1024,
            max_iobps=4096,
            max_pids=77,
            max_disk=300,
        ),
        environment={"MODE": "fast", "EMPTY": ""},
        secret_environment={"TOKEN": "s3cr=t"},
        product=ProductRef("example-compute-1", "example-compute", "example"),
    )
    fields: dict[str, object] = {
        "id": job_id,
        "owner": "alice",
        "spec": spec,
        "status": status,
        "created_at": T0,
        "backend": "local",
        "message": "waiting in the queue",
    }
    fields.update(changes)
    # As the engine makes them: the spec names the backend the job was given.
    made = fields["spec"]
    assert isinstance(made, JobSpec)
    fields["spec"] = dataclasses.replace(made, backend=str(fields["backend"]))
    return Job(**fields)  # type: ignore[arg-type]


ID_A = "aaaa1111-0000-4000-8000-000000000001"
ID_B = "aaaa2222-0000-4000-8000-000000000002"
ID_C = "bbbb3333-0000-4000-8000-000000000003"


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = SQLiteStore(tmp_path / "db") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


def to_running(store: Store, job_id: str) -> Job:
    store.transition(job_id, Status.INITIALIZING, "setting up")
    return store.transition(job_id, Status.RUNNING, "running", started_at=T0)


# -- create / get ---------------------------------------------------------------------------


def test_create_get_round_trips_every_field(store: Store) -> None:
    job = make_job(
        ID_A,
        reason=TerminationReason.EXITED,
        exit_code=0,
        started_at=T0 + timedelta(seconds=1),
        ended_at=T0 + timedelta(seconds=2),
        backend_id="pid-42",
        backend="slurm",
        status=Status.COMPLETED,
    )
    store.create(job)
    got = store.get(ID_A)
    assert got.spec == job.spec
    assert got.spec.args == ("-c", "print('hé')", "")
    assert dict(got.spec.environment) == {"MODE": "fast", "EMPTY": ""}
    assert dict(got.spec.secret_environment) == {"TOKEN": "s3cr=t"}
    assert got.spec.resources == Resources(150, "0-1", 1024, 4096, 77, 300)
    assert got.spec.product == ProductRef("example-compute-1", "example-compute", "example")
    for field in (
        "id",
        "owner",
        "status",
        "backend",
        "reason",
        "exit_code",
        "backend_id",
        "message",
        "created_at",
        "started_at",
        "ended_at",
    ):
        assert getattr(got, field) == getattr(job, field), field
    assert got.status is Status.COMPLETED
    assert got.reason is TerminationReason.EXITED


def test_timestamps_come_back_timezone_aware(store: Store) -> None:
    store.create(make_job(ID_A))
    job = to_running(store, ID_A)
    job = store.transition(ID_A, Status.COMPLETED, "done", ended_at=T0 + timedelta(hours=1))
    for ts in (job.created_at, job.started_at, job.ended_at, *(u.timestamp for u in job.updates)):
        assert ts is not None
        assert ts.tzinfo is not None
        assert ts.utcoffset() == timedelta(0)
    assert job.created_at == T0
    assert job.ended_at == T0 + timedelta(hours=1)


def test_optional_fields_round_trip_as_none(store: Store) -> None:
    store.create(make_job(ID_A))
    got = store.get(ID_A)
    assert (got.reason, got.exit_code, got.started_at, got.ended_at) == (None, None, None, None)
    assert got.backend_id == ""
    store.create(make_job(ID_B, spec=JobSpec(command="true")))
    assert store.get(ID_B).spec.product is None


def test_create_of_an_existing_id_is_refused_and_keeps_the_original(store: Store) -> None:
    store.create(make_job(ID_A))
    with pytest.raises(JobyardError):
        store.create(make_job(ID_A, owner="mallory"))
    assert store.get(ID_A).owner == "alice"


# -- history ----------------------------------------------------------------------------------


def test_history_gets_one_entry_per_transition_in_order(store: Store) -> None:
    store.create(make_job(ID_A))
    to_running(store, ID_A)
    store.transition(ID_A, Status.STOPPING, "stop requested", reason=TerminationReason.USER_STOP)
    job = store.transition(ID_A, Status.STOPPED, "stopped by user request", exit_code=-1)
    assert [(u.status, u.message) for u in job.updates] == [
        (Status.QUEUED, "waiting in the queue"),
        (Status.INITIALIZING, "setting up"),
        (Status.RUNNING, "running"),
        (Status.STOPPING, "stop requested"),
        (Status.STOPPED, "stopped by user request"),
    ]
    stamps = [u.timestamp for u in job.updates]
    assert stamps == sorted(stamps)
    assert job.updates[0].timestamp == T0
    assert job.message == "stopped by user request"
    assert job.reason is TerminationReason.USER_STOP
    assert job.exit_code == -1
    assert store.get(ID_A) == job


def test_update_sets_fields_without_history(store: Store) -> None:
    store.create(make_job(ID_A))
    store.transition(ID_A, Status.INITIALIZING, "setting up")
    job = store.update(ID_A, backend_id="fake-1")
    assert job.backend_id == "fake-1"
    assert store.get(ID_A).backend_id == "fake-1"
    assert [u.status for u in job.updates] == [Status.QUEUED, Status.INITIALIZING]
    assert job.status is Status.INITIALIZING


def test_update_of_unknown_job_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match=f"^job not found: {ID_A}$"):
        store.update(ID_A, backend_id="x")


def test_only_mutable_fields_may_change(store: Store) -> None:
    store.create(make_job(ID_A))
    with pytest.raises(ValueError, match="owner"):
        store.update(ID_A, owner="mallory")
    with pytest.raises(ValueError, match="owner"):
        store.transition(ID_A, Status.INITIALIZING, "x", owner="mallory")
    assert store.get(ID_A).owner == "alice"
    assert store.get(ID_A).status is Status.QUEUED


# -- compare-and-set -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([Status.INITIALIZING], Status.QUEUED),
        ([], Status.COMPLETED),
        ([Status.INITIALIZING, Status.RUNNING, Status.COMPLETED], Status.RUNNING),
        ([Status.INITIALIZING, Status.RUNNING, Status.COMPLETED], Status.FAILED),
        ([Status.INITIALIZING, Status.RUNNING, Status.STOPPING], Status.COMPLETED),
        ([Status.INITIALIZING, Status.RUNNING, Status.STOPPING], Status.FAILED),
        ([Status.STOPPED], Status.QUEUED),
    ],
)
def test_disallowed_transition_is_refused_and_changes_nothing(
    store: Store, path: list[Status], refused: Status
) -> None:
    store.create(make_job(ID_A))
    for status in path:
        store.transition(ID_A, status, f"to {status}")
    before = store.get(ID_A)
    with pytest.raises(StaleTransition, match=str(before.status)):
        store.transition(ID_A, refused, "should not happen", exit_code=99, backend_id="zzz")
    assert store.get(ID_A) == before


def test_sqlite_cas_in_sql_guards_a_second_store_on_the_same_file(tmp_path: Path) -> None:
    # Two servers' views of the same file (not a supported setup: each keeps live records):
    # both saw RUNNING, a stop and an exit race. The stop is committed first; the exit,
    # accepted by the second store's live record, is refused by the SQL compare-and-set,
    # and the second store then reads the file's truth again.
    first, second = SQLiteStore(tmp_path / "db"), SQLiteStore(tmp_path / "db")
    try:
        first.create(make_job(ID_A))
        to_running(first, ID_A)
        first.flush()
        assert second.get(ID_A).status is Status.RUNNING
        first.transition(ID_A, Status.STOPPING, "stop requested")
        first.flush()
        second.transition(ID_A, Status.COMPLETED, "completed", exit_code=0)
        second.flush()
        job = second.get(ID_A)
        assert job.status is Status.STOPPING
        assert job.exit_code is None
        assert [u.status for u in job.updates][-1] is Status.STOPPING
    finally:
        first.close()
        second.close()


def test_transition_of_unknown_job_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match=f"^job not found: {ID_A}$"):
        store.transition(ID_A, Status.INITIALIZING, "x")


def test_get_of_unknown_job_is_not_found(store: Store) -> None:
    store.create(make_job(ID_A))
    with pytest.raises(NotFound, match=f"^job not found: {ID_B}$"):
        store.get(ID_B)


# -- resolve_id -------------------------------------------------------------------------------


@pytest.fixture
def three_jobs(store: Store) -> Store:
    for job_id in (ID_A, ID_B, ID_C):
        store.create(make_job(job_id))
    return store


def test_resolve_full_id(three_jobs: Store) -> None:
    assert resolve_id(three_jobs, ID_B) == ID_B
    assert resolve_id(three_jobs, f"  {ID_B.upper()} ") == ID_B


def test_resolve_unique_prefix(three_jobs: Store) -> None:
    assert resolve_id(three_jobs, "bbbb") == ID_C
    assert resolve_id(three_jobs, "aaaa2") == ID_B
    assert resolve_id(three_jobs, "AAAA1111-") == ID_A


def test_resolve_ambiguous_prefix_is_invalid_argument(three_jobs: Store) -> None:
    with pytest.raises(InvalidArgument, match="ambiguous"):
        resolve_id(three_jobs, "aaaa")


def test_resolve_too_short_prefix_is_invalid_argument(three_jobs: Store) -> None:
    with pytest.raises(InvalidArgument, match="at least 4"):
        resolve_id(three_jobs, "bbb")


@pytest.mark.parametrize(
    "ref", ["cccc", "not-a-job", "zzzz", "aaaa%", "aaaa_", "aa%a", "", "x" * 40, ID_A[:-1] + "9"]
)
def test_resolve_unknown_or_garbage_is_not_found(three_jobs: Store, ref: str) -> None:
    with pytest.raises(NotFound, match=r"^job not found"):
        resolve_id(three_jobs, ref)


def test_prefix_lookup_does_not_treat_like_wildcards_as_wildcards(store: Store) -> None:
    store.create(make_job(ID_A))
    assert store.ids_with_prefix("aaaa", 2) == [ID_A]
    for prefix in ("____", "%", "aa_a", "aaaa%"):
        assert store.ids_with_prefix(prefix, 2) == [], prefix


# -- scoped lookups: another owner's job is absent --------------------------------------------


@pytest.fixture
def two_owners(store: Store) -> Store:
    """ID_A is alice's (project physics), ID_B mallory's (no project), ID_C bob's (physics)."""
    store.create(make_job(ID_A, project="physics"))
    store.create(make_job(ID_B, owner="mallory"))
    store.create(make_job(ID_C, owner="bob", project="physics"))
    return store


def test_a_prefix_shared_with_another_owners_job_is_not_ambiguous_to_a_scoped_caller(
    two_owners: Store,
) -> None:
    assert find_job(two_owners, "aaaa", Scope("alice")).id == ID_A
    assert find_job(two_owners, "aaaa", Scope("mallory")).id == ID_B
    with pytest.raises(InvalidArgument, match="ambiguous"):
        find_job(two_owners, "aaaa")  # unscoped (admin, viewer): both count


@pytest.mark.parametrize("ref", [ID_A, "aaaa1", ID_A[:8].upper()])
def test_another_owners_job_is_not_found_by_id_or_prefix(two_owners: Store, ref: str) -> None:
    with pytest.raises(NotFound) as info:
        find_job(two_owners, ref, Scope("mallory"))
    assert str(info.value) == f"job not found: {ref.strip().lower()}"


def test_a_project_member_finds_and_lists_the_projects_jobs(two_owners: Store) -> None:
    assert find_job(two_owners, ID_C, Scope("alice", "physics")).owner == "bob"
    jobs, _ = two_owners.query(JobQuery(scope=Scope("alice", "physics")))
    assert {j.id for j in jobs} == {ID_A, ID_C}
    jobs, _ = two_owners.query(JobQuery(scope=Scope("mallory")))
    assert [j.id for j in jobs] == [ID_B]
    jobs, _ = two_owners.query(JobQuery(scope=Scope("mallory"), owner="alice"))
    assert jobs == []  # a filter narrows, never widens
    assert two_owners.ids_with_prefix("bbbb", 2, Scope("mallory")) == []


def test_a_shared_job_is_found_and_listed_by_whom_it_is_shared_with(two_owners: Store) -> None:
    shared = two_owners.update(ID_B, shared_with=("project:chemistry", "user:carol"))
    assert shared.shared_with == ("project:chemistry", "user:carol")
    assert two_owners.get(ID_B).shared_with == ("project:chemistry", "user:carol")
    for who in (Scope("carol"), Scope("dan", "chemistry")):
        assert find_job(two_owners, ID_B, who).owner == "mallory"
        jobs, _ = two_owners.query(JobQuery(scope=who))
        assert [j.id for j in jobs] == [ID_B]
        assert two_owners.ids_with_prefix(ID_B[:8], 2, who) == [ID_B]
    with pytest.raises(NotFound):
        find_job(two_owners, ID_B, Scope("alice", "physics"))
    two_owners.update(ID_B, shared_with=())
    with pytest.raises(NotFound):
        find_job(two_owners, ID_B, Scope("carol"))


def test_the_project_is_stored(two_owners: Store) -> None:
    assert two_owners.get(ID_A).project == "physics"
    assert two_owners.get(ID_B).project == ""


# -- list -------------------------------------------------------------------------------------


def test_list_is_oldest_first_and_filters_by_status(store: Store) -> None:
    # Created out of id order, so an id sort would give a different answer.
    for job_id in (ID_C, ID_A, ID_B):
        store.create(make_job(job_id))
    to_running(store, ID_A)
    store.transition(ID_B, Status.STOPPED, "stopped before it started")
    assert [j.id for j in store.list()] == [ID_C, ID_A, ID_B]
    assert [j.id for j in store.list([Status.QUEUED])] == [ID_C]
    assert [j.id for j in store.list([Status.RUNNING, Status.STOPPED])] == [ID_A, ID_B]
    assert [j.id for j in store.list({Status.RUNNING})] == [ID_A]
    assert store.list([Status.FAILED]) == []
    assert store.list([]) == []
    assert store.list()[1] == store.get(ID_A)


def test_list_of_empty_store(store: Store) -> None:
    assert store.list() == []


# -- SQLite only ------------------------------------------------------------------------------


def test_sqlite_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path, box = tmp_path / "db", SecretBox.ephemeral()  # the server's key file, reused
    first = SQLiteStore(path, box)
    first.create(make_job(ID_A))
    to_running(first, ID_A)
    first.update(ID_A, backend_id="pid-7")
    before = first.get(ID_A)
    first.close()

    again = SQLiteStore(path, box)
    try:
        assert again.get(ID_A) == before
        assert again.schema_version == LATEST_SCHEMA
        job = again.transition(ID_A, Status.COMPLETED, "completed", exit_code=0)
        assert [u.status for u in job.updates][-2:] == [Status.RUNNING, Status.COMPLETED]
    finally:
        again.close()


def test_sqlite_schema_version_and_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "db"
    SQLiteStore(path).close()
    reopened = SQLiteStore(path)
    assert reopened.schema_version == LATEST_SCHEMA
    reopened.close()
    db = sqlite3.connect(path)
    try:
        versions = db.execute("SELECT version FROM schema_migrations").fetchall()
        assert versions == [(v,) for v, _ in _migrations()]
    finally:
        db.close()


def test_sqlite_files_are_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "jobyard.db"
    store = SQLiteStore(path)
    try:
        store.create(make_job(ID_A))  # secret environment now on disk
        for f in path.parent.iterdir():
            mode = stat.S_IMODE(f.stat().st_mode)
            assert mode & 0o077 == 0, f"{f.name} has mode {oct(mode)}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_sqlite_reopen_tightens_a_loose_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "db"
    SQLiteStore(path).close()
    path.chmod(0o644)
    SQLiteStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_transaction_keeps_the_original_error_when_sqlite_ended_the_transaction(
    tmp_path: Path,
) -> None:
    from jobyard.store.sqlite import transaction

    db = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    try:
        with pytest.raises(ValueError, match="the real error"), transaction(db):
            db.execute("COMMIT")  # as SQLite does itself when a COMMIT fails on a full disk
            raise ValueError("the real error")
        assert not db.in_transaction
    finally:
        db.close()


def test_sqlite_on_a_full_disk_raises_data_disk_full_and_keeps_what_it_had(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobyard.db")
    store.create(make_job(ID_A))
    store.flush()
    # SQLite's own "database or disk is full" (SQLITE_FULL), as on a full data disk, on the
    # connection the writer thread commits with.
    pages = store.connection.execute("PRAGMA page_count").fetchone()[0]
    store.writer.submit(lambda db: db.execute(f"PRAGMA max_page_count = {pages}")).result()
    many = [f"cccc{n:04d}-0000-4000-8000-000000000000" for n in range(200)]

    async def create_many() -> None:
        for job_id in many:  # each needs pages of its own, whatever the batches are
            job = make_job(job_id)
            big = dataclasses.replace(job.spec, environment={"BIG": "x" * 20000})
            store.create(dataclasses.replace(job, spec=big))
        await store.committed()

    with pytest.raises(DataDiskFull, match="the data disk is full"):
        asyncio.run(create_many())
    with pytest.raises(NotFound):  # what was not stored is not shown either
        store.get(many[-1])
    assert store.get(ID_A).spec.resources.max_disk == 300  # read back, max_disk included
    store.writer.submit(lambda db: db.execute("PRAGMA max_page_count = 1073741823")).result()
    store.transition(ID_A, Status.INITIALIZING, "setting up")
    store.flush()
    assert store.get(ID_A).status is Status.INITIALIZING
    store.close()
    again = SQLiteStore(tmp_path / "jobyard.db")
    assert again.get(ID_A).status is Status.INITIALIZING
    again.close()
