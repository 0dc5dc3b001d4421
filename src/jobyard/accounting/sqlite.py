"""SQLiteLedger: wallets and charges in the server's SQLite database (migration 0009).

A charge and its debit are one transaction, and the charge id is the table's key: after a
crash at any moment a charge is either wholly applied or not at all, and applying it again
is a duplicate. ``synchronous=FULL`` (the store's connection) makes each commit durable.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from jobyard.accounting.ledger import (
    MAX_CREDITS,
    Charge,
    ChargeOutcome,
    ChargeRecord,
    Wallet,
    check_credits,
    check_wallet_key,
)
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import utcnow
from jobyard.store.sqlite import transaction


class SQLiteLedger:
    """The local Ledger adapter; ``db`` is the store's connection (migrations applied)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # -- wallets ---------------------------------------------------------------------------

    def deposit(self, owner: str, project: str, credits: int) -> Wallet:
        """Add ``credits`` to the wallet (owner, project), creating it if needed."""
        check_wallet_key(owner, project)
        check_credits(credits)
        with transaction(self._db):
            balance = self.wallet(owner, project).balance
            if balance + credits > MAX_CREDITS:
                raise InvalidArgument(
                    f"invalid credits {credits}: the balance would exceed {MAX_CREDITS}"
                )
            self._db.execute(
                "INSERT INTO wallets (owner, project, balance) VALUES (?, ?, ?)"
                " ON CONFLICT (owner, project) DO UPDATE SET balance = balance + excluded.balance",
                (owner, project, credits),
            )
            self._db.execute(
                "INSERT INTO deposits (owner, project, credits, at) VALUES (?, ?, ?, ?)",
                (owner, project, credits, utcnow().isoformat()),
            )
        return self.wallet(owner, project)

    def wallet(self, owner: str, project: str = "") -> Wallet:
        """The wallet (an empty one if nothing was ever deposited)."""
        row = self._db.execute(
            "SELECT balance, spent FROM wallets WHERE owner = ? AND project = ?", (owner, project)
        ).fetchone()
        return Wallet(owner, project, row[0], row[1]) if row else Wallet(owner, project, 0)

    def wallets(self, owner: str | None = None, project: str | None = None) -> list[Wallet]:
        """Wallets, by owner then project; only ``owner``'s / ``project``'s when given."""
        where, params = ["1 = 1"], list[str]()
        for column, value in (("owner", owner), ("project", project)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._db.execute(
            "SELECT owner, project, balance, spent FROM wallets"
            f" WHERE {' AND '.join(where)} ORDER BY owner, project",
            params,
        )
        return [Wallet(r[0], r[1], r[2], r[3]) for r in rows]

    def charges(self, job_id: str) -> list[ChargeRecord]:
        rows = self._db.execute(
            "SELECT job_id, owner, project, first_unit, last_unit, periods, credits, product, at"
            " FROM charges WHERE job_id = ? ORDER BY first_unit",
            (job_id,),
        )
        return [ChargeRecord(Charge(*r[:8]), datetime.fromisoformat(r[8])) for r in rows.fetchall()]

    # -- the Ledger port -------------------------------------------------------------------

    async def can_pay(self, owner: str, project: str, credits: int) -> bool:
        return credits <= 0 or self.wallet(owner, project).balance >= credits

    async def charge(self, charges: Sequence[Charge]) -> list[ChargeOutcome]:
        # One transaction (one fsync) for the lot; each charge is still decided on its own.
        with transaction(self._db):
            return [self._charge(c) for c in charges]

    async def charged_units(self, job_id: str) -> int:
        row = self._db.execute(
            "SELECT MAX(last_unit) FROM charges WHERE job_id = ?", (job_id,)
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _charge(self, charge: Charge) -> ChargeOutcome:
        """Apply one charge inside the caller's transaction."""
        seen = self._db.execute(
            "SELECT 1 FROM charges WHERE charge_id = ?", (charge.charge_id,)
        ).fetchone()
        if seen:
            return ChargeOutcome.DUPLICATE
        if charge.credits > 0:
            cur = self._db.execute(
                "UPDATE wallets SET balance = balance - ?, spent = spent + ?"
                " WHERE owner = ? AND project = ? AND balance >= ?",
                (charge.credits, charge.credits, charge.owner, charge.project, charge.credits),
            )
            if cur.rowcount != 1:
                return ChargeOutcome.INSUFFICIENT_FUNDS
        self._db.execute(
            "INSERT INTO charges (charge_id, job_id, owner, project, first_unit, last_unit,"
            " periods, credits, product, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (charge.charge_id, charge.job_id, charge.owner, charge.project,
             charge.first_unit, charge.last_unit, charge.periods, charge.credits,
             charge.product, utcnow().isoformat()),
        )  # fmt: skip
        return ChargeOutcome.CHARGED


__all__ = ["SQLiteLedger"]
