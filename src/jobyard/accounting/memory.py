"""MemoryLedger: an in-memory Ledger with SQLiteLedger's semantics, for unit tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jobyard.accounting.ledger import (
    Charge,
    ChargeOutcome,
    ChargeRecord,
    Wallet,
    check_credits,
    check_wallet_key,
)
from jobyard.domain.jobs import utcnow


class MemoryLedger:
    def __init__(self) -> None:
        self._wallets: dict[tuple[str, str], Wallet] = {}
        self._charges: dict[str, ChargeRecord] = {}
        self.calls: list[list[Charge]] = []  # every charge() call, for tests to inspect

    def deposit(self, owner: str, project: str, credits: int) -> Wallet:
        check_wallet_key(owner, project)
        check_credits(credits)
        wallet = self.wallet(owner, project)
        wallet = dataclasses.replace(wallet, balance=wallet.balance + credits)
        self._wallets[(owner, project)] = wallet
        return wallet

    def wallet(self, owner: str, project: str = "") -> Wallet:
        return self._wallets.get((owner, project), Wallet(owner, project, 0))

    def wallets(self, owner: str | None = None, project: str | None = None) -> list[Wallet]:
        return [
            w
            for key, w in sorted(self._wallets.items())
            if owner in (None, w.owner) and project in (None, w.project)
        ]

    def charges(self, job_id: str) -> list[ChargeRecord]:
        found = [r for r in self._charges.values() if r.charge.job_id == job_id]
        return sorted(found, key=lambda r: r.charge.first_unit)

    async def can_pay(self, owner: str, project: str, credits: int) -> bool:
        return credits <= 0 or self.wallet(owner, project).balance >= credits

    async def charge(self, charges: Sequence[Charge]) -> list[ChargeOutcome]:
        self.calls.append(list(charges))
        return [self._charge(c) for c in charges]

    async def charged_units(self, job_id: str) -> int:
        return max((r.charge.last_unit + 1 for r in self.charges(job_id)), default=0)

    def _charge(self, charge: Charge) -> ChargeOutcome:
        if charge.charge_id in self._charges:
            return ChargeOutcome.DUPLICATE
        wallet = self.wallet(charge.owner, charge.project)
        if charge.credits > 0:
            if (charge.owner, charge.project) not in self._wallets or (
                wallet.balance < charge.credits
            ):
                return ChargeOutcome.INSUFFICIENT_FUNDS
            self._wallets[(charge.owner, charge.project)] = dataclasses.replace(
                wallet, balance=wallet.balance - charge.credits, spent=wallet.spent + charge.credits
            )
        self._charges[charge.charge_id] = ChargeRecord(charge, utcnow())
        return ChargeOutcome.CHARGED


__all__ = ["MemoryLedger"]
