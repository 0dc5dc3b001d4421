"""The provider face's pure parts and stores: a history as Core's updates, the outbox's
bookkeeping, and CoreLedger's calls (against a fake Core client, real SQLite)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.accounting.core import CoreLedger
from jobyard.accounting.ledger import Charge, ChargeOutcome
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import RANK_JOB_ID_LABEL, Job, JobSpec, StatusUpdate, new_job_id, utcnow
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine import EngineConfig, JobEngine
from jobyard.http.provider.relay import CoreRelay, RelayConfig
from jobyard.http.provider.updates import core_updates, final_update
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime.base import ExitInfo
from jobyard.runtime.fake import FakeRuntime
from jobyard.store import MemoryStore, SQLiteStore
from jobyard.store.provider import SQLiteProviderStore
from jobyard.ucloud.catalog import CoreConfig
from jobyard.ucloud.core import CoreClient, CoreUnavailable, read_token

S = Status


def job(*history: tuple[Status, str], reason: TerminationReason | None = None) -> Job:
    now = utcnow()
    updates = tuple(StatusUpdate(now, status, text) for status, text in history)
    return Job(id="j-1", owner="user", spec=JobSpec(command="true"), status=history[-1][0],
               created_at=now, reason=reason, updates=updates)  # fmt: skip


def states(updates: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(u["state"], u["status"]) for u in updates]


# -- a history as Core's updates ------------------------------------------------------------


def test_a_batch_job_is_running_then_finished_with_the_seeds_texts() -> None:
    done = job((S.QUEUED, "waiting"), (S.INITIALIZING, "setting up"), (S.RUNNING, "running"),
               (S.COMPLETED, "completed"), reason=TerminationReason.EXITED)  # fmt: skip
    assert states(core_updates(done)) == [
        ("RUNNING", "The job is now running!"),
        ("SUCCESS", "The job has finished processing!"),
    ]
    update = core_updates(done)[0]
    assert list(update) == ["state", "outputFolder", "status", "expectedState",
                            "expectedDifferentState", "newTimeAllocation", "allowRestart",
                            "newMounts", "timestamp"]  # fmt: skip
    assert update["timestamp"] == 0  # Core's to fill in


def test_suspension_cancel_expiry_credits_and_failure() -> None:
    cancelled = job((S.QUEUED, "q"), (S.RUNNING, "r"), (S.SUSPENDED, "s"), (S.RUNNING, "r"),
                    (S.STOPPING, "stop requested"), (S.STOPPED, "stopped by user request"),
                    reason=TerminationReason.USER_STOP)  # fmt: skip
    assert [s for s, _ in states(core_updates(cancelled))] == [
        "RUNNING", "SUSPENDED", "RUNNING", "SUCCESS"]  # fmt: skip
    assert core_updates(cancelled)[-1]["status"] == "The job was cancelled!"
    expired = job((S.RUNNING, "r"), (S.STOPPING, "t"), (S.STOPPED, "stopped: time limit reached"),
                  reason=TerminationReason.TIME_LIMIT)  # fmt: skip
    assert states(core_updates(expired))[-1] == ("EXPIRED", "The job has reached its time limit!")
    poor = job((S.RUNNING, "r"), (S.STOPPING, "n"), (S.STOPPED, "n"),
               reason=TerminationReason.NO_CREDITS)  # fmt: skip
    assert states(core_updates(poor))[-1] == ("SUCCESS", "The job was terminated (No credits)")
    failed = job((S.RUNNING, "r"), (S.FAILED, "killed: out of memory"),
                 reason=TerminationReason.OOM_KILLED)  # fmt: skip
    assert states(core_updates(failed))[-1] == (
        "FAILURE",
        "The job has failed: killed: out of memory (OOM_KILLED)",
    )


def test_a_job_that_never_ran_reports_only_its_end() -> None:
    refused = job((S.QUEUED, "q"), (S.FAILED, "launch failed: no such file"),
                  reason=TerminationReason.LAUNCH_ERROR)  # fmt: skip
    assert [s for s, _ in states(core_updates(refused))] == ["FAILURE"]
    assert final_update(refused) == core_updates(refused)[-1]
    assert final_update(job((S.QUEUED, "q"), (S.RUNNING, "r"))) is None


# -- the outbox --------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteProviderStore]:
    sqlite = SQLiteStore(tmp_path / "jobyard.db")
    yield SQLiteProviderStore(sqlite.connection)
    sqlite.close()


def test_the_outbox_queues_each_update_once_in_order(store: SQLiteProviderStore) -> None:
    store.add("54112", "j-1")
    running = {"state": "RUNNING"}
    done = {"state": "SUCCESS"}
    assert store.post("54112", [running], final=False) == 1
    assert store.post("54112", [running], final=False) == 0  # seen again: nothing new
    assert store.post("54112", [running, done], final=True) == 1
    assert store.post("54112", [running], final=False) == 0  # a stale view queues nothing
    pending = store.pending(10)
    assert [(i.core_id, i.update) for i in pending] == [("54112", running), ("54112", done)]
    assert store.open_jobs() == []  # its end is queued: nothing to catch up on
    store.acknowledged(pending[0].seq)
    assert [i.update for i in store.pending(10)] == [done]
    assert store.post("unknown", [running], final=False) == 0


# -- CoreLedger --------------------------------------------------------------------------------


class FakeCoreClient:
    def __init__(self, answers: list[dict[str, Any]] | None = None, down: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self._answers = answers or []
        self.down = down

    async def charge_credits(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if self.down:
            raise CoreUnavailable("down")
        self.calls.append(items)
        return self._answers.pop(0) if self._answers else {}


def unit(n: int, job_id: str = "j-1", periods: int = 3) -> Charge:
    return Charge(job_id=job_id, owner="user", project="", first_unit=n, last_unit=n,
                  periods=periods, credits=0)  # fmt: skip


async def test_each_unit_is_one_item_and_a_job_appears_once_per_call(
    store: SQLiteProviderStore,
) -> None:
    store.add("54112", "j-1")
    store.add("63489", "j-2")
    client = FakeCoreClient([{"duplicateCharges": [{"id": "54112"}]}])
    ledger = CoreLedger(client, store)  # type: ignore[arg-type]
    outcomes = await ledger.charge([unit(0), unit(1), unit(0, "j-2", 23)])
    assert outcomes == [ChargeOutcome.DUPLICATE, ChargeOutcome.CHARGED, ChargeOutcome.CHARGED]
    assert [[(i["id"], i["chargeId"], i["units"], i["periods"]) for i in call]
            for call in client.calls] == [
        [("54112", "54112-units-0-0", 1, 3), ("63489", "63489-units-0-0", 1, 23)],
        [("54112", "54112-units-1-1", 1, 3)],
    ]  # fmt: skip
    assert await ledger.charged_units("j-1") == 2 and await ledger.charged_units("j-2") == 1


async def test_a_job_refused_a_unit_is_sent_nothing_more(store: SQLiteProviderStore) -> None:
    store.add("63489", "j-2")
    client = FakeCoreClient([{"insufficientFunds": [{"id": "63489"}]}])
    ledger = CoreLedger(client, store)  # type: ignore[arg-type]
    outcomes = await ledger.charge([unit(0, "j-2"), unit(1, "j-2")])
    assert outcomes == [ChargeOutcome.INSUFFICIENT_FUNDS] * 2
    assert len(client.calls) == 1
    assert await ledger.charged_units("j-2") == 0


async def test_core_down_charges_nothing_and_a_job_core_never_created_is_refused(
    store: SQLiteProviderStore,
) -> None:
    store.add("54112", "j-1")
    ledger = CoreLedger(FakeCoreClient(down=True), store)  # type: ignore[arg-type]
    with pytest.raises(CoreUnavailable):
        await ledger.charge([unit(0)])
    assert await ledger.charged_units("j-1") == 0  # the same unit (and id) is sent again
    client = FakeCoreClient()
    ledger = CoreLedger(client, store)  # type: ignore[arg-type]
    assert await ledger.charge([unit(0, "forged")]) == [ChargeOutcome.INSUFFICIENT_FUNDS]
    assert client.calls == []
    assert await ledger.can_pay("user", "", 10**12)  # Core checked before it created the job


# -- CoreRelay: the engine's events to Core, through the outbox ---------------------------------


class FakeUpdates:
    """Core's update endpoint: refuses the first ``refusals`` calls, then records."""

    def __init__(self, refusals: int = 0) -> None:
        self.refusals = refusals
        self.attempts = 0
        self.received: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def update(self, items: list[dict[str, Any]]) -> None:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise CoreUnavailable("refused")
        self.received += [(i["id"], i["update"]["state"]) for i in items]
        self.changed.set()

    async def until(self, count: int) -> None:
        while len(self.received) < count:
            self.changed.clear()
            await self.changed.wait()

    async def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def engine_on(tmp_path: Path, runtime: FakeRuntime) -> AsyncIterator[JobEngine]:
    layout = JobLayout(tmp_path / "data")
    layout.prepare()
    hub = LogHub(layout)
    hub.start()
    engine = JobEngine(MemoryStore(), runtime, layout, hub, EngineConfig())
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()
        hub.close()


FAST = RelayConfig(first_retry_seconds=0.001, max_retry_seconds=0.01)


async def test_the_relay_sends_a_jobs_changes_in_order_through_refusals_and_a_restart(
    tmp_path: Path, store: SQLiteProviderStore
) -> None:
    runtime = FakeRuntime()
    async with engine_on(tmp_path, runtime) as engine:
        core = FakeUpdates(refusals=3)
        relay = CoreRelay(engine, store, core, FAST)  # type: ignore[arg-type]
        await relay.start()
        job_id = new_job_id()
        store.add("54112", job_id)
        spec = JobSpec(command="true", labels={RANK_JOB_ID_LABEL: "54112"})
        await engine.submit(Identity("user", Role.USER), spec, job_id=job_id)
        runtime.finish(job_id, ExitInfo(exit_code=0))
        await core.until(2)
        assert core.received == [("54112", "RUNNING"), ("54112", "SUCCESS")]
        assert core.attempts >= 4  # three refused, then delivered: retried, not dropped
        relay.verify("54112")  # a finished job: its end again
        relay.verify("00000")  # unknown: no longer available
        await relay.close()  # before that is sent: it waits in the outbox
        assert [i.core_id for i in store.pending(10)] == ["54112", "00000"]
        again = FakeUpdates()
        relay = CoreRelay(engine, store, again, FAST)  # type: ignore[arg-type]
        await relay.start()
        await again.until(2)
        assert again.received == [("54112", "SUCCESS"), ("00000", "FAILURE")]
        await relay.close()


# -- the Core client's config -------------------------------------------------------------------


def test_the_core_token_file_must_hold_one_token(tmp_path: Path) -> None:
    good = tmp_path / "token"
    good.write_text("  abc.DEF-123\n")
    assert read_token(str(good)) == "abc.DEF-123"
    for content in ("", "\n  \n", "two tokens\n"):
        good.write_text(content)
        with pytest.raises(InvalidArgument, match=r"ucloud\.core\.tokenFile: .* holds no single"):
            read_token(str(good))
    with pytest.raises(InvalidArgument, match=r"ucloud\.core\.tokenFile: cannot read"):
        read_token(str(tmp_path / "missing"))
    good.write_text("secret-token")
    config = CoreConfig.model_validate(
        {"url": "https://core.example", "tokenFile": str(good), "caFile": str(tmp_path / "x")}
    )
    with pytest.raises(InvalidArgument, match=r"ucloud\.core\.caFile: cannot read") as info:
        CoreClient(config)
    assert "secret-token" not in str(info.value)
