"""Helpers for tests of the HTTPS face: a server with it, tokens, an HTTPS and a WebSocket
client that trust the test CA (real TLS, real server, real SQLite)."""

from __future__ import annotations

import json
import ssl
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

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
HTTP_CONFIG_FILE: Path | None = None
