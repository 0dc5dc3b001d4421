"""Helpers for tests of the HTTPS face: a server with it, tokens, an HTTPS and a WebSocket
client that trust the test CA (real TLS, real server, real SQLite)."""

from __future__ import annotations

import json
import socket
import ssl
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from jobyard.domain.access import Role
from jobyard.logs import JobLayout
from jobyard.store import SQLiteStore
from jobyard.store.tokens import SQLiteTokens


def make_token(
    data_dir: Path,
    name: str,
    role: str = "user",
    *,
    project: str = "",
    expires_at: datetime | None = None,
) -> str:
    """A new token in the server's database, as ``jobyard tokens create`` makes one."""
    store = SQLiteStore(JobLayout(data_dir).database)
    try:
        tokens = SQLiteTokens(store.connection)
        _, secret = tokens.create(name, Role(role), project=project, expires_at=expires_at)
        return secret
    finally:
        store.close()


def revoke_token(data_dir: Path, ref: str) -> None:
    store = SQLiteStore(JobLayout(data_dir).database)
    try:
        SQLiteTokens(store.connection).revoke(ref)
    finally:
        store.close()


class Http:
    """An HTTPS client of the face; ``token`` is sent as ``Authorization: Bearer``."""

    def __init__(self, port: int, ca: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca))
        self.client = httpx.Client(
            base_url=f"https://localhost:{port}", verify=self.context, timeout=30
        )

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, path, headers=headers, **kw)

    def ok(self, method: str, path: str, token: str, **kw: Any) -> Any:
        response = self.call(method, path, token, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def retrieve(self, token: str, job_id: str, **flags: str) -> Any:
        return self.ok("GET", "/api/jobs/retrieve", token, params={"id": job_id, **flags})

    def websocket(self) -> ClientConnection:
        return connect(f"wss://localhost:{self.port}/api/jobs", ssl=self.context)

    def close(self) -> None:
        self.client.close()


def follow(ws: ClientConnection, stream_id: str, job_id: str, token: str) -> None:
    ws.send(json.dumps({"call": "jobs.follow", "streamId": stream_id,
                        "payload": {"id": job_id}, "bearer": token}))  # fmt: skip


def messages_until_response(ws: ClientConnection, timeout: float = 60) -> list[Any]:
    """Every message the server sends, up to and including the first ``response``."""
    out = []
    while True:
        message = json.loads(ws.recv(timeout))
        out.append(message)
        if message["type"] == "response":
            return out


# The server config of the HTTP tests: the seed's product and application (tests/data).
HTTP_CONFIG_FILE = Path(__file__).resolve().parents[1] / "data" / "http-config.yml"


def wait_state(http: Http, token: str, job_id: str, state: str) -> Any:
    """Follow the job over the WebSocket until it is in ``state`` (no polling); the job
    as ``retrieve`` then answers."""
    with http.websocket() as ws:
        follow(ws, "wait", job_id, token)
        while True:
            message = json.loads(ws.recv(60))
            assert message["type"] == "message", message
            payload = message["payload"]
            initial = payload["initialJob"]
            current = initial["status"] if initial else payload["newStatus"]
            if current is not None and current["state"] == state:
                return http.retrieve(token, job_id)


class StalledClient:
    """A WebSocket client that reads nothing until told to (no library thread reading on
    its behalf), with a small receive buffer: what it has not read stays at the server."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connecting
        raw.connect(("127.0.0.1", port))
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.proto = ClientProtocol(parse_uri(f"wss://localhost:{port}/api/jobs"), max_size=None)
        self.proto.send_request(self.proto.connect())
        self._flush()
        while not self.proto.events_received():  # the handshake's response
            self.proto.receive_data(self.sock.recv(65536))

    def send(self, text: str) -> None:
        self.proto.send_text(text.encode())
        self._flush()

    def _flush(self) -> None:
        for data in self.proto.data_to_send():
            self.sock.sendall(data)

    def read_until_closed(self, timeout: float = 60) -> tuple[int | None, str, list[Any]]:
        """Read everything: ``(close code, close reason, messages before it)``."""
        self.sock.settimeout(timeout)
        messages: list[Any] = []
        while True:
            data = self.sock.recv(1 << 20)
            if data:
                self.proto.receive_data(data)
            else:
                self.proto.receive_eof()
            messages += [json.loads(e.data) for e in self.proto.events_received()
                         if isinstance(e, Frame) and e.opcode is Opcode.TEXT]  # fmt: skip
            close = self.proto.close_rcvd
            if close is not None or not data:
                self.sock.close()
                return (close.code if close else None), (close.reason if close else ""), messages
