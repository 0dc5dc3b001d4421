"""Accounting: wallets, the Ledger port that charges jobs, and its adapters."""

from jobyard.accounting.ledger import (
    Charge,
    ChargeOutcome,
    ChargeRecord,
    Ledger,
    Pricing,
    Wallet,
    charge_id,
)

__all__ = ["Charge", "ChargeOutcome", "ChargeRecord", "Ledger", "Pricing", "Wallet", "charge_id"]
