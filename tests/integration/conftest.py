"""A real jobyard server in-process (own thread and event loop) on 127.0.0.1:0.

Real mTLS certificates, real SQLite, the real local runtime. Tests use the synchronous SDK
from the test thread, as a user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.client import Client
from jobyard.config import load_config
from jobyard.domain.access import SYSTEM
from jobyard.domain.errors import JobyardError
from jobyard.server.app import RunningServer, start_server
from tests.conftest import root_problem
from tests.integration.http_support import HTTP_CONFIG_FILE, Http

requires_root = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")


class ServerThread:
    """Runs :func:`start_server` in a thread with its own loop; restartable."""

    def __init__(self, data_dir: Path, certs_dir: Path, **config: Any) -> None:
        self.data_dir = data_dir
        self.certs_dir = certs_dir
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.running: RunningServer | None = None

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> int:
        cfg_path = self._config.get("config_file")
        config = load_config(
            cfg_path,
            data_dir=self.data_dir,
            certs_dir=self.certs_dir,
            listen="127.0.0.1:0",
            http_listen=self._config.get("http_listen"),
        )
        rate = self._config.get("charge_rate", 1.0)
        self.running = self.call(start_server(config, charge_rate=rate))
        return self.running.port

    @property
    def port(self) -> int:
        assert self.running is not None
        return self.running.port

    def drain(self, timeout: float = 30) -> None:
        """Stop every unfinished job and wait until all are ended and cleaned up."""

        async def _drain() -> None:
            assert self.running is not None
            engine = self.running.engine
            for job in engine.jobs(SYSTEM):
                if not job.status.terminal:
                    with contextlib.suppress(JobyardError):
                        await engine.stop(SYSTEM, job.id)
            while engine.watching:
                await asyncio.sleep(0.01)

        if self.running is not None:
            self.call(_drain(), timeout)

    def stop(self) -> None:
        if self.running is not None:
            self.call(self.running.stop(grace=0.5))
            self.running = None

    def close(self) -> None:
        self.drain()
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def server(tmp_path: Path, certs_dir: Path) -> Iterator[ServerThread]:
    if root_problem():
        pytest.skip(root_problem() or "")
    thread = ServerThread(tmp_path / "data", certs_dir)
    thread.start()
    yield thread
    thread.close()


ClientFactory = Callable[..., Client]


@pytest.fixture
def client_for(server: ServerThread, certs_dir: Path) -> Iterator[ClientFactory]:
    clients: list[Client] = []

    def make(role: str = "admin", *, certs: Path | None = None) -> Client:
        base = certs or certs_dir
        client = Client(
            server=f"localhost:{server.port}",
            cert=str(base / f"{role}-client-cert.pem"),
            key=str(base / f"{role}-client-key.pem"),
            ca=str(base / "ca-cert.pem"),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def admin(client_for: ClientFactory) -> Client:
    return client_for("admin")


@pytest.fixture
def viewer(client_for: ClientFactory) -> Client:
    return client_for("viewer")


# -- the HTTPS face ----------------------------------------------------------------------


@pytest.fixture
def http_server(tmp_path: Path, certs_dir: Path) -> Iterator[ServerThread]:
    """A server that also serves the HTTPS face (UCloud Jobs API) on a port of its own."""
    if root_problem():
        pytest.skip(root_problem() or "")
    thread = ServerThread(tmp_path / "data", certs_dir, http_listen="127.0.0.1:0",
                          config_file=HTTP_CONFIG_FILE)  # fmt: skip
    thread.start()
    yield thread
    thread.close()


@pytest.fixture
def http(http_server: ServerThread, certs_dir: Path) -> Iterator[Http]:
    assert http_server.running is not None
    client = Http(http_server.running.http_port, certs_dir / "ca-cert.pem")
    yield client
    client.close()


@pytest.fixture
def grpc_admin(http_server: ServerThread, certs_dir: Path) -> Iterator[Client]:
    """The admin's SDK client of the same server (the gRPC face)."""
    client = Client(
        server=f"localhost:{http_server.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )
    yield client
    client.close()
