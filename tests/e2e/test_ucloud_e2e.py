"""The `ucloud:` config and `jobyard wallets` as an operator uses them, beside a daemon."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.e2e.daemon import Daemon
from tests.unit.ucloud_samples import application, product

APP = application([{"type": "word", "word": "true"}], [])


def write_config(root: Path, **ucloud: object) -> Path:
    path = root / "config.yml"
    path.write_text(yaml.safe_dump({"ucloud": {"providerId": "example", **ucloud}}))
    return path


def test_a_bad_ucloud_config_stops_the_server_naming_the_key(tmp_path: Path) -> None:
    d = Daemon(tmp_path)
    config = write_config(tmp_path, products=[product(), product(name="b", pricePerUnit=-1)])
    result = d.run("server", "--certs", "certs", "--data-dir", "data", "--config", str(config),
                   "--listen", f"127.0.0.1:{d.port}", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert "config: ucloud.products[1].pricePerUnit: must be >= 0" in result.stderr


def test_wallets_beside_a_running_server_with_products(tmp_path: Path) -> None:
    d = Daemon(tmp_path)
    d.start("--config", str(write_config(tmp_path, products=[product()], applications=[APP])))
    try:
        data = str(tmp_path / "data")
        deposit = d.run("wallets", "deposit", "--data-dir", data, "--owner", "alice",
                        "--credits", "60000000", check=True)  # fmt: skip
        assert deposit.stdout.split("\n")[1].split() == ["alice", "-", "60000000", "0"]
        shown = d.run("wallets", "show", "--data-dir", data, "--json", check=True)
        assert json.loads(shown.stdout)["wallets"] == [
            {"owner": "alice", "project": "", "balance": 60000000, "spent": 0}
        ]
        assert d.run("list", check=True).returncode == 0  # the server is unaffected
    finally:
        d.stop()
