"""``GET /api/accounting/wallets``: the caller's wallets (every wallet for admin and viewer),
from the same ledger that charges the jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from jobyard.accounting.ledger import Wallet
from jobyard.domain.access import Identity, authorize, scope
from jobyard.domain.errors import InvalidArgument
from jobyard.http.auth import caller
from jobyard.http.face import Json
from jobyard.http.jobs import Face

router = APIRouter(prefix="/api/accounting", tags=["accounting"])
MAX_WALLETS = 1000


@router.get("/wallets", summary="Wallets: balance and credits spent, per owner and project")
async def wallets(
    who: Annotated[Identity, Depends(caller)],
    face: Face,
    project: Annotated[str | None, Query(max_length=128)] = None,
) -> Json:
    authorize(who, "list_wallets")
    if face.ledger is None:
        raise InvalidArgument("this server keeps no wallets")
    limits = scope(who)
    owner = None if limits is None else limits.owner  # a user sees its own wallets only
    found = face.ledger.wallets(owner=owner, project=project)[:MAX_WALLETS]
    return {"itemsPerPage": MAX_WALLETS, "items": [_wallet(w) for w in found], "next": None}


def _wallet(wallet: Wallet) -> Json:
    return {
        "owner": {"createdBy": wallet.owner, "project": wallet.project or None},
        "balance": wallet.balance,
        "spent": wallet.spent,
        "unit": "CREDITS",
    }
