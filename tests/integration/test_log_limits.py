"""Output limits through the public API: the per-job maximum, and a full data disk."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.client import Client
from jobyard.domain.access import SYSTEM
from jobyard.domain.errors import ResourceExhausted
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread

WAIT_SECONDS = 60


@contextlib.contextmanager
def configured(
    data_dir: Path, certs_dir: Path, config: str
) -> Iterator[tuple[ServerThread, Client]]:
    if root_problem():
        pytest.skip(root_problem() or "")
    config_file = data_dir.parent / f"{data_dir.name}.yml"
    config_file.write_text(config)
    server = ServerThread(data_dir, certs_dir, config_file=config_file)
    server.start()
    client = Client(
        server=f"localhost:{server.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )
    try:
        yield server, client
    finally:
        client.close()
        server.close()


def history(server: ServerThread, job_id: str) -> list[str]:
    assert server.running is not None
    return [u.message for u in server.running.engine.job(SYSTEM, job_id).updates]


def output_size(server: ServerThread, job_id: str) -> int:
    return (server.data_dir / "jobs" / job_id / "output.log").stat().st_size


def test_a_job_writing_past_its_output_limit_is_stopped_and_says_why(
    tmp_path: Path, certs_dir: Path
) -> None:
    config = "jobyard:\n  maxOutputBytes: 1000000\n"
    with configured(tmp_path / "data", certs_dir, config) as (server, client):
        small = client.submit("head", ["-c", "1000000", "/dev/zero"])  # exactly the limit
        endless = client.submit("yes", ["output"])
        done = client.wait(endless.id, timeout=WAIT_SECONDS)
        assert (done.status, done.termination_reason) == ("STOPPED", "OUTPUT_LIMIT")
        assert done.message == "stopped: output limit reached"
        assert any(
            m.startswith("output limit of 1000000 bytes reached (")
            for m in history(server, done.id)
        ), history(server, done.id)
        # Output written before the stop is kept; how far past the limit it went is bounded
        # by the check interval and the stop's grace period.
        assert 1_000_000 < output_size(server, done.id) < 100_000_000
        # A kill may land in the middle of a write(): the last line may be cut short.
        *lines, last = b"".join(c.data for c in client.read_logs(done.id, tail=3)).split(b"\n")
        assert lines[-2:] == [b"output", b"output"] and b"output".startswith(last)
        assert client.wait(small.id, timeout=WAIT_SECONDS).status == "COMPLETED"


def test_no_output_limit_when_it_is_zero(tmp_path: Path, certs_dir: Path) -> None:
    config = "jobyard:\n  maxOutputBytes: 0\n"
    with configured(tmp_path / "data", certs_dir, config) as (server, client):
        job = client.submit("head", ["-c", "3000000", "/dev/zero"])
        assert client.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"
        assert output_size(server, job.id) == 3_000_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a data directory that a job can fill."""
    if root_problem():
        pytest.skip(root_problem() or "")
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)
    shutil.rmtree(mount, ignore_errors=True)


def test_a_full_disk_fails_only_the_job_filling_it(small_disk: Path, certs_dir: Path) -> None:
    config = "jobyard:\n  diskReserveBytes: 262144\n"
    with configured(small_disk / "data", certs_dir, config) as (server, client):
        quiet = client.submit("echo", ["kept"])
        assert client.wait(quiet.id, timeout=WAIT_SECONDS).status == "COMPLETED"
        filler = client.submit("head", ["-c", "10000000", "/dev/zero"])
        done = client.wait(filler.id, timeout=WAIT_SECONDS)
        # Its end is recorded, with the reason, although the disk was full.
        assert (done.status, done.termination_reason) == ("STOPPED", "OUTPUT_LIMIT")
        assert any(
            m.startswith("data disk full: output kept up to ") for m in history(server, done.id)
        )
        kept = output_size(server, filler.id)
        assert 0 < kept < 2 * 1024 * 1024
        assert sum(len(c.data) for c in client.read_logs(filler.id)) == kept
        # Other jobs' output is intact, and the server goes on serving: new jobs are
        # refused while the disk is full, and run again once space returns.
        assert b"".join(client.logs(quiet.id)) == b"kept\n"
        with pytest.raises(ResourceExhausted, match=r"the data disk is full: [\d.]+ MB free"):
            client.submit("echo", ["too soon"])
        client.delete(filler.id)
        after = client.submit("echo", ["still here"])
        assert client.wait(after.id, timeout=WAIT_SECONDS).status == "COMPLETED"
        assert b"".join(client.logs(after.id)) == b"still here\n"
