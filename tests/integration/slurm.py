"""A jobyard server whose default backend is the real Slurm cluster of this machine.

CI starts the cluster (``.ci/run``: ``../shared/tools/slurm-local.sh start``). A machine
without a running cluster FAILS these tests with the reason: they are never skipped, so a
CI that lost its cluster cannot pass silently.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobyard.client import Client
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread

WAIT_SECONDS = 60.0
SLURM_CONFIG = """\
jobyard:
  backend: slurm
  backends: [slurm, local]
slurm:
  defaultTimeLimit: 10m
"""


def cluster_problem() -> str | None:
    """Why there is no usable Slurm cluster here (None: there is one)."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        return "Slurm's tools are not installed (run ../shared/tools/slurm-local.sh start)"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    if "UP" not in ping.stdout:
        return f"slurmctld is not up: {ping.stdout.strip() or ping.stderr.strip()}"
    return root_problem()


@pytest.fixture
def slurm_server(tmp_path: Path, certs_dir: Path) -> Iterator[ServerThread]:
    problem = cluster_problem()
    if problem:
        pytest.fail(f"the Slurm tests need a running cluster: {problem}")
    config = tmp_path / "slurm.yml"
    config.write_text(SLURM_CONFIG)
    thread = ServerThread(tmp_path / "data", certs_dir, config_file=config)
    thread.start()
    yield thread
    thread.close()


@pytest.fixture
def sadmin(slurm_server: ServerThread, certs_dir: Path) -> Iterator[Client]:
    client = Client(
        server=f"localhost:{slurm_server.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )
    yield client
    client.close()


def until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait for an outcome (not a duration): fails with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def scontrol_job(slurm_id: str) -> dict[str, str]:
    """Slurm's own record of a job (``scontrol show job -o``) as Key -> Value."""
    out = subprocess.run(["scontrol", "show", "job", "-o", slurm_id], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return dict(pair.split("=", 1) for pair in out.split() if "=" in pair)
