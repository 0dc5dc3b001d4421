"""Start a real `jobyard server` subprocess on a free loopback port for benchmarks."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from jobyard.certs import init_certs
from jobyard.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class BenchServer:
    """A running server subprocess: its pid (for RSS and profilers) and how to reach it."""

    client: Client
    process: subprocess.Popen[bytes]
    address: str
    certs: Path

    def new_client(self) -> Client:
        """Another client with its own channel (one per benchmark thread)."""
        return admin_client(self.address, self.certs)


def admin_client(address: str, certs: Path) -> Client:
    return Client(
        server=address,
        cert=str(certs / "admin-client-cert.pem"),
        key=str(certs / "admin-client-key.pem"),
        ca=str(certs / "ca-cert.pem"),
    )


@contextlib.contextmanager
def bench_server(config: str = "") -> Iterator[BenchServer]:
    with tempfile.TemporaryDirectory(prefix="jobyard-bench-") as tmp:
        base = Path(tmp)
        init_certs(base / "certs")
        port = free_port()
        args = [sys.executable, "-m", "jobyard", "server", "--listen", f"127.0.0.1:{port}",
                "--certs", str(base / "certs"), "--data-dir", str(base / "data")]  # fmt: skip
        if config:
            (base / "config.yml").write_text(config)
            args += ["--config", str(base / "config.yml")]
        log = open(base / "server.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        address, certs = f"localhost:{port}", base / "certs"
        server = BenchServer(admin_client(address, certs), proc, address, certs)
        client = server.client
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.jobs()
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((base / "server.log").read_text()) from None
                    time.sleep(0.1)
            yield server
        finally:
            client.close()
            proc.terminate()
            proc.wait(10)
            log.close()
            os.environ.pop("JOBYARD_BENCH", None)


@contextlib.contextmanager
def running_server(config: str = "") -> Iterator[Client]:
    with bench_server(config) as server:
        yield server.client
