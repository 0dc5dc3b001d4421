"""The Ledger port and wallets, checked against both adapters (SQLite and the in-memory fake)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from jobyard.accounting.ledger import (
    MAX_CREDITS,
    Charge,
    ChargeOutcome,
    ChargeRecord,
    Ledger,
    Wallet,
    charge_id,
)
from jobyard.accounting.memory import MemoryLedger
from jobyard.accounting.sqlite import SQLiteLedger
from jobyard.domain.errors import InvalidArgument
from jobyard.store import SQLiteStore


class Wallets(Ledger, Protocol):
    def deposit(self, owner: str, project: str, credits: int) -> Wallet: ...
    def wallet(self, owner: str, project: str = "") -> Wallet: ...
    def wallets(self, owner: str | None = None, project: str | None = None) -> list[Wallet]: ...
    def charges(self, job_id: str) -> list[ChargeRecord]: ...


@pytest.fixture(params=["sqlite", "memory"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Wallets]:
    if request.param == "memory":
        yield MemoryLedger()
        return
    store = SQLiteStore(tmp_path / "db")
    yield SQLiteLedger(store.connection)
    store.close()


def unit(n: int, *, credits: int = 100, job: str = "job-1", owner: str = "alice") -> Charge:
    return Charge(job, owner, "", n, n, periods=1, credits=credits, product="p (c)")


def test_charge_ids_are_a_function_of_the_job_and_unit_range() -> None:
    assert charge_id("54112", 3, 5) == "54112-units-3-5"
    assert Charge("54112", "u", "", 3, 5, 23, 0).charge_id == "54112-units-3-5"
    assert Charge("54112", "u", "", 3, 5, 23, 0).units == 3


def test_deposits_add_up_per_owner_and_project(ledger: Wallets) -> None:
    assert ledger.wallet("alice") == Wallet("alice", "", 0)
    ledger.deposit("alice", "", 500)
    assert ledger.deposit("alice", "", 250) == Wallet("alice", "", 750)
    ledger.deposit("alice", "team", 10)
    ledger.deposit("bob", "", 1)
    assert [(w.owner, w.project, w.balance) for w in ledger.wallets()] == [
        ("alice", "", 750), ("alice", "team", 10), ("bob", "", 1),
    ]  # fmt: skip
    assert [w.project for w in ledger.wallets(owner="alice")] == ["", "team"]
    assert [w.owner for w in ledger.wallets(project="team")] == ["alice"]


@pytest.mark.parametrize(
    ("owner", "credits", "message"),
    [
        ("alice", 0, "invalid credits 0: must be between 1 and"),
        ("alice", -5, "invalid credits -5"),
        ("alice", MAX_CREDITS + 1, "must be between 1 and"),
        ("", 5, "an owner is required"),
        ("a\x00b", 5, "invalid wallet owner"),
    ],
)
def test_bad_deposits_are_refused(ledger: Wallets, owner: str, credits: int, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        ledger.deposit(owner, "", credits)
    assert ledger.wallets() == []


async def test_a_charge_debits_once_and_a_repeat_is_a_duplicate(ledger: Wallets) -> None:
    ledger.deposit("alice", "", 1000)
    assert await ledger.charge([unit(0), unit(1)]) == [ChargeOutcome.CHARGED] * 2
    assert await ledger.charge([unit(1)]) == [ChargeOutcome.DUPLICATE]
    wallet = ledger.wallet("alice")
    assert (wallet.balance, wallet.spent) == (800, 200)
    assert await ledger.charged_units("job-1") == 2
    assert await ledger.charged_units("other") == 0
    assert [r.charge for r in ledger.charges("job-1")] == [unit(0), unit(1)]


async def test_insufficient_funds_take_nothing(ledger: Wallets) -> None:
    ledger.deposit("alice", "", 150)
    outcomes = await ledger.charge([unit(0), unit(1)])
    assert outcomes == [ChargeOutcome.CHARGED, ChargeOutcome.INSUFFICIENT_FUNDS]
    assert ledger.wallet("alice").balance == 50
    assert await ledger.charged_units("job-1") == 1  # the unpaid unit is not recorded
    assert await ledger.charge([unit(0, owner="nobody", job="j2")]) == [
        ChargeOutcome.INSUFFICIENT_FUNDS
    ]
    assert await ledger.can_pay("alice", "", 50)
    assert not await ledger.can_pay("alice", "", 51)
    assert await ledger.can_pay("nobody", "", 0)


async def test_free_charges_are_recorded_without_a_wallet(ledger: Wallets) -> None:
    assert await ledger.charge([unit(0, credits=0)]) == [ChargeOutcome.CHARGED]
    assert await ledger.charged_units("job-1") == 1


async def test_sqlite_charges_survive_a_crash_and_stay_unique(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    SQLiteLedger(store.connection).deposit("alice", "", 1000)
    assert await SQLiteLedger(store.connection).charge([unit(0)]) == [ChargeOutcome.CHARGED]
    store.close()  # as after a kill: only what was committed is there
    again = SQLiteStore(tmp_path / "db")
    ledger = SQLiteLedger(again.connection)
    assert await ledger.charge([unit(0)]) == [ChargeOutcome.DUPLICATE]
    assert ledger.wallet("alice") == Wallet("alice", "", 900, 100)
    again.close()
