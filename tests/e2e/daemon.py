"""`jobyard server` as a subprocess, and the CLI and SDK pointed at it, as a user runs them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jobyard.client import Client
from jobyard.domain.errors import JobyardError

START_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 60.0
TERMINAL = ("COMPLETED", "FAILED", "STOPPED")


def jobyard_argv() -> list[str]:
    script = Path(sys.executable).parent / "jobyard"
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobyard"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """A daemon started in ``root`` with relative ``certs``/``data`` paths, as a user would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.certs = root / "certs"
        self.port = free_port()
        self.log_path = root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("JOBYARD_", "JOBLET_"))},
            "JOBYARD_SERVER": self.address,
            "JOBYARD_CERT_PATH": str(self.certs / "admin-client-cert.pem"),
            "JOBYARD_KEY_PATH": str(self.certs / "admin-client-key.pem"),
            "JOBYARD_CA_PATH": str(self.certs / "ca-cert.pem"),
        }
        if not (self.certs / "ca-cert.pem").exists():
            self.run("certs", "init", "--dir", str(self.certs), check=True)

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def start(self, *extra: str) -> None:
        argv = [*jobyard_argv(), "server", "--listen", f"127.0.0.1:{self.port}",
                "--certs", "certs", "--data-dir", "data", *extra]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        with self.client() as c:
            while True:
                try:
                    c.jobs()
                    return
                except JobyardError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"server did not start:\n{self.log()}") from None
                    time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, role: str = "admin") -> Client:
        return Client(
            server=self.address,
            cert=str(self.certs / f"{role}-client-cert.pem"),
            key=str(self.certs / f"{role}-client-key.pem"),
            ca=str(self.certs / "ca-cert.pem"),
        )

    # -- the CLI ---------------------------------------------------------------------

    def run(self, *args: str, check: bool = False, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*jobyard_argv(), *args], env=self.env, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT_SECONDS, check=check, **kw,
        )  # fmt: skip

    def run_bytes(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*jobyard_argv(), *args], env=self.env, capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )  # fmt: skip

    def submit(self, *args: str) -> str:
        result = self.run("run", "--json", *args, check=True)
        return str(json.loads(result.stdout)["id"])

    def wait(self, job_id: str) -> dict[str, Any]:
        result = self.run("wait", "--json", "--timeout", "30", job_id, check=True)
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    # -- ending ----------------------------------------------------------------------

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def drain(self) -> None:
        """Stop every unfinished job, so none outlives the test."""
        if self.process is None:
            return
        with self.client() as c:
            for job in c.jobs():
                if job.status not in TERMINAL:
                    with contextlib.suppress(JobyardError):
                        c.stop(job.id)

    def stop(self) -> None:
        self.drain()
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
