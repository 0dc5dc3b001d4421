"""Runs the HTTPS face with uvicorn in the daemon's own event loop (a task, no thread).

TLS with the server certificate of the gRPC face (same CA); no client certificate is asked
for: callers authenticate with bearer tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from jobyard import certs as certificates
from jobyard.domain.errors import InvalidArgument

log = logging.getLogger("jobyard.http")

MAX_WEBSOCKET_MESSAGE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024
SHUTDOWN_GRACE_SECONDS = 2
# Connections (WebSockets included) served at once; more are answered 503 at once.
MAX_CONNECTIONS = 1024


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signals to the daemon and says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon's SIGINT/SIGTERM handler stops both faces

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@dataclasses.dataclass
class HttpServer:
    """A started HTTPS face; ``port`` is the bound port (useful with port 0 in tests)."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


def bind(listen: str) -> socket.socket:
    """A socket bound to ``HOST:PORT`` (``[::1]:8443`` for IPv6)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"invalid HTTP listen address {listen!r}: use HOST:PORT")
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), int(port), type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InvalidArgument(f"cannot listen on {listen}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


async def start_http(app: FastAPI, listen: str, certs_dir: Path | None) -> HttpServer:
    """Serve ``app`` on ``listen`` (HTTPS with ``certs_dir``'s server pair, else plain HTTP
    for --insecure-dev) until :meth:`HttpServer.stop`."""
    sock = bind(listen)
    tls = {}
    if certs_dir is not None:
        tls = {"ssl_certfile": str(certs_dir / certificates.SERVER_CERT),
               "ssl_keyfile": str(certs_dir / certificates.SERVER_KEY)}  # fmt: skip
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        ws_max_size=MAX_WEBSOCKET_MESSAGE_BYTES,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        limit_concurrency=MAX_CONNECTIONS,
        # TODO: uvicorn has no header-read timeout: a client that sends headers a byte at a
        # time holds a connection (bounded by MAX_CONNECTIONS); put a proxy or h11 timeout.
        server_header=False,
        **tls,  # type: ignore[arg-type]
    )
    config.load()  # certificate errors surface here, before anything listens
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="http-face")
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        sock.close()
        await task  # raises what stopped it
        raise InvalidArgument(f"the HTTP face did not start on {listen}")
    port = sock.getsockname()[1]
    log.info("http listening | address=%s port=%d tls=%s", listen, port, certs_dir is not None)
    return HttpServer(server=server, task=task, port=port)
