"""The Ledger port: wallets and charges, whoever keeps them.

A job is charged per *started* unit of its product's price unit (a minute, an hour or a day
of running time), in advance, times its replicas. Charges are identified by
:func:`charge_id`, a function of the job and the range of units charged, so a charge made
twice (a retry, a restart that lost track of what it sent) is a duplicate, never a second
debit. This is the shape of UCloud/Core's ``jobs.control.chargeCredits``
(``{id, chargeId, units, periods}``; answers ``insufficientFunds`` and ``duplicateCharges``),
so the provider face adds an adapter for Core beside :class:`~jobyard.accounting.sqlite.
SQLiteLedger`. An adapter that talks to a remote ledger journals a charge durably before
sending it, so that after a crash it resends the same range, hence the same charge id.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from jobyard.domain.errors import InvalidArgument

UNIT_SECONDS = {
    "CREDITS_PER_MINUTE": 60.0,
    "CREDITS_PER_HOUR": 3600.0,
    "CREDITS_PER_DAY": 86400.0,
}
MAX_CREDITS = 10**18  # well inside SQLite's signed 64-bit integers
MAX_WALLET_NAME_CHARS = 256


@dataclasses.dataclass(frozen=True, slots=True)
class Pricing:
    """What one unit of a product costs: ``price_per_unit`` credits per ``unit_seconds``
    of running time, per replica. ``free`` products are never charged (UCloud freeToUse)."""

    product: str  # for messages: "example-compute-1 (example-compute)"
    price_per_unit: int
    unit_seconds: float
    free: bool = False
    unit_name: str = "minute"

    def cost(self, units: int, periods: int) -> int:
        return 0 if self.free else self.price_per_unit * units * periods


@dataclasses.dataclass(frozen=True, slots=True)
class Wallet:
    owner: str
    project: str  # "" = the owner's personal wallet
    balance: int  # credits
    spent: int = 0  # credits charged so far


@dataclasses.dataclass(frozen=True, slots=True)
class Charge:
    """Units ``first_unit..last_unit`` (0-based, inclusive) of a job, ``periods`` times
    (its replicas), at ``credits`` in total, taken from the wallet (owner, project)."""

    job_id: str
    owner: str
    project: str
    first_unit: int
    last_unit: int
    periods: int
    credits: int
    product: str = ""

    @property
    def charge_id(self) -> str:
        return charge_id(self.job_id, self.first_unit, self.last_unit)

    @property
    def units(self) -> int:
        return self.last_unit - self.first_unit + 1


class ChargeOutcome(enum.StrEnum):
    CHARGED = "CHARGED"
    DUPLICATE = "DUPLICATE"  # this charge id was charged before; nothing taken again
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"  # nothing taken


@dataclasses.dataclass(frozen=True, slots=True)
class ChargeRecord:
    charge: Charge
    at: datetime


def charge_id(job_id: str, first_unit: int, last_unit: int) -> str:
    """Stable per job and unit range: ``<job id>-units-<first>-<last>``."""
    return f"{job_id}-units-{first_unit}-{last_unit}"


def check_wallet_key(owner: str, project: str) -> None:
    if not owner or not owner.strip():
        raise InvalidArgument("invalid wallet: an owner is required")
    for what, value in (("owner", owner), ("project", project)):
        if len(value) > MAX_WALLET_NAME_CHARS or "\x00" in value:
            raise InvalidArgument(f"invalid wallet {what}: too long or contains NUL")


def check_credits(credits: int, what: str = "credits") -> None:
    if isinstance(credits, bool) or not isinstance(credits, int):
        raise InvalidArgument(f"invalid {what}: a whole number is required")
    if not 0 < credits <= MAX_CREDITS:
        raise InvalidArgument(f"invalid {what} {credits}: must be between 1 and {MAX_CREDITS}")


class Ledger(Protocol):
    """Where jobs' charges go. Async: an adapter may be a remote service (UCloud/Core)."""

    async def can_pay(self, owner: str, project: str, credits: int) -> bool:
        """Whether the wallet holds ``credits`` now (an adapter that cannot tell says
        True and lets :meth:`charge` decide)."""
        ...

    async def charge(self, charges: Sequence[Charge]) -> list[ChargeOutcome]:
        """Apply each charge at most once (by its charge id); one outcome per charge."""
        ...

    async def charged_units(self, job_id: str) -> int:
        """How many units of the job are paid (the next unit to charge)."""
        ...


__all__ = [
    "MAX_CREDITS",
    "UNIT_SECONDS",
    "Charge",
    "ChargeOutcome",
    "ChargeRecord",
    "Ledger",
    "Pricing",
    "Wallet",
    "charge_id",
    "check_credits",
    "check_wallet_key",
]
