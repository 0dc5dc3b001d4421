"""``jobyard tokens``: bearer tokens for the HTTP face, kept in the server's database.

These commands open the data directory's SQLite database directly (as the server's own
user, on the server's host): whoever may read that directory is already trusted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import click

from jobyard.config import parse_duration
from jobyard.domain.access import Role
from jobyard.domain.jobs import rfc3339, utcnow
from jobyard.logs import JobLayout
from jobyard.store import SQLiteStore
from jobyard.store.tokens import SQLiteTokens, Token

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="./data",
    show_default=True,
    help="The server's data directory (its database holds the tokens).",
)


@contextlib.contextmanager
def _tokens(data_dir: Path) -> Iterator[SQLiteTokens]:
    store = SQLiteStore(JobLayout(data_dir).database)  # migrates an older database
    try:
        yield SQLiteTokens(store.connection)
    finally:
        store.close()


@click.group()
def tokens() -> None:
    """Create, list and revoke the bearer tokens of the HTTPS face.

    \b
    Examples:
      jobyard tokens create --data-dir ./data --name alice --role user --expires 30d
      jobyard tokens list --data-dir ./data
      jobyard tokens revoke --data-dir ./data ID
    """


@tokens.command()
@_DATA_DIR
@click.option("--name", required=True, help="Who the token is: the owner of its jobs.")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="admin: everything; user: own and project jobs; viewer: read-only; ucloud: Core.",
)
@click.option("--project", default="", help="The project the token's user belongs to.")
@click.option("--expires", metavar="DURATION", help="Lifetime such as 12h or 30d (default: none).")
def create(data_dir: Path, name: str, role: str, project: str, expires: str | None) -> None:
    """Create a token and print it, alone on stdout. It is shown this once only."""
    expires_at = None
    if expires is not None:
        seconds = parse_duration(expires)
        if not seconds:
            raise click.BadParameter("must be longer than 0", param_hint="--expires")
        expires_at = utcnow() + timedelta(seconds=seconds)
    with _tokens(data_dir) as store:
        _, secret = store.create(name, Role(role), project=project, expires_at=expires_at)
    click.echo(secret)


@tokens.command("list")
@_DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def list_tokens(data_dir: Path, as_json: bool) -> None:
    """Every token: id, name, role, project, created, expires, state (never the secret)."""
    with _tokens(data_dir) as store:
        rows = [_row(token) for token in store.list()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ID':<13} {'NAME':<16} {'ROLE':<7} {'PROJECT':<12} {'EXPIRES':<25} STATE")
    for row in rows:
        click.echo(
            f"{row['id']:<13} {row['name']:<16} {row['role']:<7} {row['project'] or '-':<12} "
            f"{row['expiresAt'] or 'never':<25} {row['state']}"
        )


@tokens.command()
@_DATA_DIR
@click.argument("ref", metavar="ID|NAME")
def revoke(data_dir: Path, ref: str) -> None:
    """Revoke a token at once (by id, or by name when one active token has it)."""
    with _tokens(data_dir) as store:
        token = store.revoke(ref)
    click.echo(f"revoked {token.id} ({token.name})")


def _row(token: Token) -> dict[str, str]:
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role.value,
        "project": token.project,
        "createdAt": rfc3339(token.created_at),
        "expiresAt": rfc3339(token.expires_at),
        "state": token.state(utcnow()),
    }
