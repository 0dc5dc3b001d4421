"""CoreLedger: the Ledger port for jobs UCloud/Core created, charged through Core.

Each unit the charger charges becomes one ``chargeCredits`` item ``{id: Core's job id,
chargeId: <Core id>-units-<n>-<n>, units: 1, periods: replicas}``: the id depends only on
the job and the unit, so a retry (Core was down, jobyard restarted) is a duplicate that
Core ignores, never a second charge. Charges are journalled (store.provider) before they
are sent, and a unit counts as paid once Core answered for it.

Core answers per job (``insufficientFunds: [{id}]``, ``duplicateCharges: [{id}]``), so a
call holds at most one unit of each job: units of one job go in successive calls, and a
job refused a unit is sent nothing more (the charger stops it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from jobyard.accounting.ledger import Charge, ChargeOutcome
from jobyard.store.provider import SQLiteProviderStore
from jobyard.ucloud.core import MAX_ITEMS_PER_CALL, CoreClient

log = logging.getLogger("jobyard.accounting.core")


def core_charge_id(core_id: str, unit: int) -> str:
    return f"{core_id}-units-{unit}-{unit}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Unit:
    """One unit of one job, as one chargeCredits item."""

    job_id: str
    core_id: str
    unit: int
    periods: int

    @property
    def charge_id(self) -> str:
        return core_charge_id(self.core_id, self.unit)

    def item(self) -> dict[str, object]:
        return {"id": self.core_id, "chargeId": self.charge_id, "units": 1,
                "periods": self.periods, "performedBy": None, "description": None}  # fmt: skip


_NO_FUNDS = ChargeOutcome.INSUFFICIENT_FUNDS
_RANK = {ChargeOutcome.CHARGED: 0, ChargeOutcome.DUPLICATE: 1, _NO_FUNDS: 2}


class CoreLedger:
    def __init__(self, client: CoreClient, store: SQLiteProviderStore) -> None:
        self._client = client
        self._store = store

    async def can_pay(self, owner: str, project: str, credits: int) -> bool:
        # Core checked the wallet before it sent the create; what a unit costs is Core's
        # to refuse (insufficientFunds), which stops the job.
        return True

    async def charged_units(self, job_id: str) -> int:
        return self._store.paid_units(job_id)

    async def charge(self, charges: Sequence[Charge]) -> list[ChargeOutcome]:
        """One outcome per charge (a charge of several units is refused whole if Core
        refuses any of its units). Raises CoreUnavailable if Core did not answer: the
        charger tries the same units again later, under the same charge ids."""
        per_charge = [self._units(charge) for charge in charges]
        outcomes = await self._send([unit for units in per_charge if units for unit in units])
        return [
            max((outcomes[u.charge_id] for u in units), key=_RANK.__getitem__)
            if units else _NO_FUNDS
            for units in per_charge
        ]  # fmt: skip

    def _units(self, charge: Charge) -> list[_Unit] | None:
        """The charge's units as Core items; None for a job Core did not create (nobody
        pays for it: refused, so the charger stops it)."""
        found = self._store.by_job_id(charge.job_id)
        if found is None:
            log.warning("charge refused: job not created by UCloud/Core | jobId=%s",
                        charge.job_id)  # fmt: skip
            return None
        return [_Unit(found.job_id, found.core_id, n, charge.periods)
                for n in range(charge.first_unit, charge.last_unit + 1)]  # fmt: skip

    async def _send(self, units: list[_Unit]) -> dict[str, ChargeOutcome]:
        """Journal, then send ``units`` round by round; the outcome of each charge id."""
        self._store.journal([(u.charge_id, u.job_id, u.core_id, u.unit, u.periods)
                             for u in units])  # fmt: skip
        outcomes: dict[str, ChargeOutcome] = {}
        refused: set[str] = set()  # Core ids refused a unit: sent nothing more
        for batch in _rounds(units):
            for unit in batch:
                if unit.core_id in refused:
                    outcomes[unit.charge_id] = _NO_FUNDS
            batch = [u for u in batch if u.core_id not in refused]
            for start in range(0, len(batch), MAX_ITEMS_PER_CALL):
                answered = await self._call(batch[start : start + MAX_ITEMS_PER_CALL])
                outcomes.update(answered)
                refused |= {u.core_id for u in batch if answered.get(u.charge_id) is _NO_FUNDS}
        self._store.answered([(cid, str(outcome)) for cid, outcome in outcomes.items()])
        return outcomes

    async def _call(self, batch: list[_Unit]) -> dict[str, ChargeOutcome]:
        answer = await self._client.charge_credits([unit.item() for unit in batch])
        poor = _ids(answer.get("insufficientFunds"))
        seen = _ids(answer.get("duplicateCharges"))
        out: dict[str, ChargeOutcome] = {}
        for unit in batch:
            outcome = (_NO_FUNDS if unit.core_id in poor else ChargeOutcome.DUPLICATE
                       if unit.core_id in seen else ChargeOutcome.CHARGED)  # fmt: skip
            out[unit.charge_id] = outcome
            log.info("core charge | coreJobId=%s chargeId=%s periods=%d outcome=%s",
                     unit.core_id, unit.charge_id, unit.periods, outcome)  # fmt: skip
        return out


def _rounds(units: list[_Unit]) -> list[list[_Unit]]:
    """Round k holds the k-th unit of each job, in order."""
    rounds: list[list[_Unit]] = []
    seen: dict[str, int] = {}
    for unit in units:
        k = seen.get(unit.core_id, 0)
        seen[unit.core_id] = k + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(unit)
    return rounds


def _ids(items: object) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {str(i["id"]) for i in items if isinstance(i, dict) and "id" in i}


__all__ = ["CoreLedger", "core_charge_id"]
