"""``jobyard wallets deposit|show`` on a data directory, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from jobyard.cli.main import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_deposit_then_show_as_table_and_json(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out = run("wallets", "deposit", "--data-dir", data, "--owner", "alice", "--credits", "50")
    assert code == 0, out
    assert out.split("\n")[1].split() == ["alice", "-", "50", "0"]
    run("wallets", "deposit", "--data-dir", data, "--owner", "alice", "--credits", "25")
    run(
        "wallets",
        "deposit",
        "--data-dir",
        data,
        "--owner",
        "bob",
        "--project",
        "p",
        "--credits",
        "1",
    )
    code, out = run("wallets", "show", "--data-dir", data, "--json")
    assert code == 0
    assert json.loads(out) == {"wallets": [
        {"owner": "alice", "project": "", "balance": 75, "spent": 0},
        {"owner": "bob", "project": "p", "balance": 1, "spent": 0},
    ]}  # fmt: skip
    code, out = run("wallets", "show", "--data-dir", data, "--owner", "bob")
    assert [line.split() for line in out.strip().split("\n")[1:]] == [["bob", "p", "1", "0"]]


def test_bad_input_fails_with_a_message_and_changes_nothing(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out = run("wallets", "deposit", "--data-dir", data, "--owner", "a", "--credits", "-3")
    assert code == 1 and "invalid credits -3" in out
    code, out = run("wallets", "deposit", "--data-dir", data, "--owner", "a", "--credits", "1.5")
    assert code == 2 and "not a whole number of credits" in out
    code, out = run("wallets", "show", "--data-dir", data)
    assert (code, out.strip()) == (0, "No wallets.")
    code, out = run("wallets", "show", "--data-dir", str(tmp_path / "elsewhere"))
    assert code == 1 and "no jobyard database" in out
