"""Bearer tokens: stored hashed, shown once, refused with the reason when unusable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobyard.cli.main import cli
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument, NotFound, Unauthenticated
from jobyard.domain.jobs import utcnow
from jobyard.logs import JobLayout
from jobyard.store import SQLiteStore
from jobyard.store.tokens import SQLiteTokens, digest


@pytest.fixture
def tokens(tmp_path: Path) -> SQLiteTokens:
    store = SQLiteStore(tmp_path / "jobyard.db")
    return SQLiteTokens(store.connection)


def test_a_token_is_its_identity_and_only_its_hash_is_kept(tokens: SQLiteTokens) -> None:
    token, secret = tokens.create("alice", Role.USER, project="lab")
    assert secret.startswith("jy_") and len(secret) >= 40
    assert tokens.authenticate(secret).identity == Identity("alice", Role.USER, "lab")
    rows = tokens._db.execute("SELECT * FROM tokens").fetchall()
    assert [row["secret_hash"] for row in rows] == [digest(secret)]
    assert all(secret not in str(tuple(row)) for row in rows)
    assert token.id in {t.id for t in tokens.list()}


def test_unusable_tokens_say_why(tokens: SQLiteTokens) -> None:
    _, secret = tokens.create("bob", Role.VIEWER, expires_at=utcnow() + timedelta(hours=1))
    with pytest.raises(Unauthenticated, match="no such token"):
        tokens.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with pytest.raises(Unauthenticated, match="not a jobyard token"):
        tokens.authenticate("hunter2")
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.authenticate(secret, now=utcnow() + timedelta(hours=2))
    tokens.revoke("bob")
    with pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate(secret)
    with pytest.raises(NotFound):
        tokens.revoke("nobody")


def test_names_are_checked(tokens: SQLiteTokens) -> None:
    for bad in ("", " alice", "a\nb", "x" * 200):
        with pytest.raises(InvalidArgument):
            tokens.create(bad, Role.USER)


def test_cli_prints_the_token_alone_and_lists_without_it(tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(tmp_path / "data")
    created = runner.invoke(cli, ["tokens", "create", "--data-dir", data, "--name", "carol",
                                  "--role", "user", "--expires", "30d"])  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n" and secret.startswith("jy_")
    listed = runner.invoke(cli, ["tokens", "list", "--data-dir", data])
    assert "carol" in listed.stdout and "active" in listed.stdout and secret not in listed.stdout
    store = SQLiteStore(JobLayout(tmp_path / "data").database)
    try:
        assert SQLiteTokens(store.connection).authenticate(secret).identity.name == "carol"
    finally:
        store.close()
    revoked = runner.invoke(cli, ["tokens", "revoke", "--data-dir", data, "carol"])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    bad = runner.invoke(cli, ["tokens", "create", "--data-dir", data, "--name", "x",
                              "--role", "root"])  # fmt: skip
    assert bad.exit_code != 0
