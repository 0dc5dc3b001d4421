"""``jobyard wallets deposit|show``: credits for jobs on priced products (server side).

Like ``jobyard tokens``, these act on the server's data directory directly (the database
is shared safely with a running server: WAL, one transaction per change), so only whoever
may read the server's data can give or see credits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import click
from rich.table import Table

from jobyard.accounting.ledger import Wallet
from jobyard.accounting.sqlite import SQLiteLedger
from jobyard.cli.lifecycle import render
from jobyard.domain.errors import InvalidArgument

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="./data",
    show_default=True,
    help="The server's data directory.",
)


@contextlib.contextmanager
def _ledger(data_dir: Path, *, create: bool) -> Iterator[SQLiteLedger]:
    # Imported here: the store is the server's; the client side of this binary never needs it.
    from jobyard.logs import JobLayout
    from jobyard.store import SQLiteStore

    database = JobLayout(data_dir).database
    if not create and not database.exists():
        raise InvalidArgument(f"no jobyard database in {data_dir} (is it the server's --data-dir?)")
    store = SQLiteStore(database)
    try:
        yield SQLiteLedger(store.connection)
    finally:
        store.close()


def _credits(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a whole number of credits") from None


@click.group()
def wallets() -> None:
    """Give credits to owners and projects, and see what they hold and spent."""


@wallets.command()
@_DATA_DIR
@click.option("--owner", required=True, help="Who the credits are for (a job's owner).")
@click.option("--project", default="", help="The owner's project wallet (default: personal).")
@click.option("--credits", "amount", required=True, help="How many credits to add (> 0).")
@click.option("--json", "as_json", is_flag=True, help="Print the wallet as JSON.")
def deposit(data_dir: Path, owner: str, project: str, amount: str, as_json: bool) -> None:
    """Add credits to a wallet (created on first deposit).

    \b
    Example:
      jobyard wallets deposit --data-dir ./data --owner alice --credits 60000000
    """
    with _ledger(data_dir, create=True) as ledger:
        wallet = ledger.deposit(owner, project, _credits(amount))
    click.echo(_json([wallet]) if as_json else _table([wallet]))


@wallets.command()
@_DATA_DIR
@click.option("--owner", default=None, help="Only this owner's wallets.")
@click.option("--project", default=None, help="Only this project's wallets.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(data_dir: Path, owner: str | None, project: str | None, as_json: bool) -> None:
    """List wallets: owner, project, balance and credits spent."""
    with _ledger(data_dir, create=False) as ledger:
        found = ledger.wallets(owner=owner, project=project)
    click.echo(_json(found) if as_json else _table(found))


def _table(found: list[Wallet]) -> str:
    if not found:
        return "No wallets."
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("OWNER", "PROJECT", "BALANCE", "SPENT"):
        table.add_column(column, justify="right" if column in ("BALANCE", "SPENT") else "left")
    for w in found:
        table.add_row(w.owner, w.project or "-", str(w.balance), str(w.spent))
    return render(table)


def _json(found: list[Wallet]) -> str:
    return json.dumps({"wallets": [dataclasses.asdict(w) for w in found]}, indent=2)


__all__ = ["wallets"]
