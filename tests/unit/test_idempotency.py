"""Idempotent creates in the engine and the workflow runner, and in both store adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import AlreadyExists, InvalidArgument
from jobyard.domain.jobs import utcnow
from jobyard.domain.requests import DuplicateRequest, RequestKey
from jobyard.engine.parsing import InlineWorkflowParser
from jobyard.engine.requests import RequestKeys
from jobyard.engine.workflows import WorkflowRunner
from jobyard.store import MemoryStore, MemoryWorkflowStore, SQLiteStore, Store
from jobyard.store.sealing import SecretBox
from tests.unit.test_engine import ALICE, Rig, rig_for, spec
from tests.unit.test_store import ID_A, ID_B, make_job

BOB = Identity("bob", Role.USER)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig_for(tmp_path) as r:
        yield r


async def test_a_retry_with_the_same_key_gets_the_first_job(rig: Rig) -> None:
    first = await rig.engine.submit(ALICE, spec(), request_key="k-1")
    again = await rig.engine.submit(ALICE, spec(), request_key="k-1")
    assert again.id == first.id
    assert [j.id for j in rig.engine.jobs(ALICE)] == [first.id]
    assert list(rig.runtime.started) == [first.id]


async def test_the_same_key_with_another_request_is_already_exists(rig: Rig) -> None:
    first = await rig.engine.submit(ALICE, spec(), request_key="k-1")
    used = f"already used for a different request .job {first.id}"
    with pytest.raises(AlreadyExists, match=used):
        await rig.engine.submit(ALICE, spec(args=("5",)), request_key="k-1")
    assert len(rig.engine.jobs(ALICE)) == 1


async def test_keys_belong_to_their_owner(rig: Rig) -> None:
    alice = await rig.engine.submit(ALICE, spec(), request_key="k-1")
    bob = await rig.engine.submit(BOB, spec(), request_key="k-1")
    assert alice.id != bob.id


async def test_without_a_key_every_submit_is_a_new_job(rig: Rig) -> None:
    a = await rig.engine.submit(ALICE, spec())
    b = await rig.engine.submit(ALICE, spec())
    assert a.id != b.id


@pytest.mark.parametrize("key", ["has space", "x" * 129, "-starts-with-dash", "é"])
async def test_a_malformed_key_is_invalid_and_creates_nothing(rig: Rig, key: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid idempotency-key"):
        await rig.engine.submit(ALICE, spec(), request_key=key)
    assert rig.engine.jobs(ALICE) == []


async def test_an_expired_key_may_be_used_again(tmp_path: Path) -> None:
    async with rig_for(tmp_path) as rig:
        rig.engine.requests = RequestKeys(SecretBox.ephemeral().fingerprint, ttl_seconds=-1)
        a = await rig.engine.submit(ALICE, spec(), request_key="k-1")
        b = await rig.engine.submit(ALICE, spec(), request_key="k-1")
        assert a.id != b.id


async def test_a_workflow_retry_gets_the_first_workflow(rig: Rig) -> None:
    workflows = WorkflowRunner(rig.engine, MemoryWorkflowStore(), InlineWorkflowParser())
    await workflows.start()
    try:
        doc = "jobs:\n  a: {command: x}\n"
        first = await workflows.submit(ALICE, doc, "w.yaml", request_key="w-1")
        again = await workflows.submit(ALICE, doc, "w.yaml", request_key="w-1")
        assert again.id == first.id
        assert [w.id for w in workflows.workflows(ALICE)] == [first.id]
        with pytest.raises(AlreadyExists, match=f"workflow {first.id}"):
            await workflows.submit(ALICE, doc + "  b: {command: y}\n", request_key="w-1")
    finally:
        await workflows.close()


# -- the stores ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = SQLiteStore(tmp_path / "db") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


def key(name: str = "k", fingerprint: str = "f1", ttl: float = 3600) -> RequestKey:
    return RequestKey("alice", name, fingerprint, utcnow() + timedelta(seconds=ttl))


def test_a_request_id_is_stored_with_its_job(store: Store) -> None:
    store.create(make_job(ID_A), key())
    claimed = store.claimed("alice", "k", utcnow())
    assert claimed is not None and (claimed.fingerprint, claimed.result_id) == ("f1", ID_A)
    assert store.claimed("bob", "k", utcnow()) is None


def test_a_taken_request_id_creates_nothing(store: Store) -> None:
    store.create(make_job(ID_A), key())
    with pytest.raises(DuplicateRequest) as exc:
        store.create(make_job(ID_B), key(fingerprint="f2"))
    assert exc.value.claimed.result_id == ID_A
    assert [j.id for j in store.list()] == [ID_A]


def test_an_expired_request_id_is_replaced(store: Store) -> None:
    store.create(make_job(ID_A), key(ttl=-1))
    assert store.claimed("alice", "k", utcnow()) is None
    store.create(make_job(ID_B), key())
    claimed = store.claimed("alice", "k", utcnow())
    assert claimed is not None and claimed.result_id == ID_B


def test_expired_request_ids_are_dropped_as_new_ones_arrive(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    store.create(make_job(ID_A), key("old", ttl=-1))
    store.create(make_job(ID_B), key("new"))
    store.flush()  # committed by the writer thread
    rows = store.connection.execute("SELECT key FROM request_keys").fetchall()
    assert [r[0] for r in rows] == ["new"]
    store.close()
