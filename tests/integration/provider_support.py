"""A fake UCloud/Core for the provider face's tests, and seed 000's bodies.

:class:`FakeCore` is a real HTTP server on 127.0.0.1 (port 0 at first, the same port after
:meth:`FakeCore.down` / :meth:`FakeCore.up`) that records every control call jobyard makes
(``jobs.control.update``, ``jobs.control.chargeCredits``) and answers as Core would; a test
can make it refuse calls (503), refuse a job's charges (insufficientFunds), or go down.

Seed 000's curl calls (method, path, JSON body) are parsed out of ``shared/seeds/000_*.txt``.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.integration.http_support import HTTP_CONFIG_FILE
from tests.unit.ucloud_samples import SEEDS

Json = dict[str, Any]
WAIT_SECONDS = 60.0
CORE_TOKEN = "core-provider-token-0123456789"


def seed000_calls() -> list[tuple[str, str, Json | None]]:
    """``(method, path, body)`` of every curl call of seed 000, in the seed's order."""
    text = (SEEDS / "000_bb1872a512ba850b.txt").read_text()
    calls = []
    for match in re.finditer(r'^curl -X(\w+) .*?"\$host(/[^"]*)"(?: -d \'(.*?)\'\n)?', text,
                             re.S | re.M):  # fmt: skip
        body = json.loads(match.group(3)) if match.group(3) else None
        calls.append((match.group(1), match.group(2), body))
    return calls


def seed000_bodies(path_end: str) -> list[Json]:
    """The bodies of seed 000's calls to a path ending in ``path_end``."""
    return [copy.deepcopy(b) for _, p, b in seed000_calls() if p.endswith(path_end) and b]


class FakeCore:
    """UCloud/Core's control API, recording what it is sent; over HTTPS with the server
    pair of ``certs`` (a ``jobyard certs init`` directory: localhost's certificate)."""

    def __init__(self, certs: Path | None = None) -> None:
        self.certs = certs
        self.calls: list[tuple[str, Json]] = []  # (path, body) of every acknowledged call
        self.refused = 0  # calls answered 503
        self.refuse = False  # answer every call 503
        self.lose_charge_answers = 0  # take this many chargeCredits calls, but answer 503
        self.poor: set[str] = set()  # Core job ids whose charges meet insufficientFunds
        self.charged: set[str] = set()  # charge ids taken
        self.authorization: set[str] = set()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    # -- what tests read ------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.certs is None:
            return f"http://127.0.0.1:{self.port}"
        return f"https://localhost:{self.port}"

    def updates(self, core_id: str | None = None) -> list[tuple[str, str]]:
        """``(id, state)`` of every update received, in order (one job's, with ``core_id``)."""
        with self._changed:
            return [(i["id"], i["update"]["state"]) for path, body in self.calls
                    if path.endswith("/update") for i in body["items"]
                    if core_id in (None, i["id"])]  # fmt: skip

    def first_states(self, core_id: str) -> list[str]:
        """The job's states in the order Core first heard them (a resent update, whose
        acknowledgement jobyard never got, counts once)."""
        return list(dict.fromkeys(state for _, state in self.updates(core_id)))

    def update_items(self, core_id: str) -> list[Json]:
        with self._changed:
            return [i for path, body in self.calls if path.endswith("/update")
                    for i in body["items"] if i["id"] == core_id]  # fmt: skip

    def charges(self, core_id: str) -> list[Json]:
        """Every chargeCredits item sent for the job (retries included), in order."""
        with self._changed:
            return self.charges_unlocked(core_id)

    def taken(self, core_id: str) -> list[str]:
        """Charge ids Core took for the job (each once), in the order first sent."""
        with self._changed:
            ids = dict.fromkeys(i["chargeId"] for i in self.charges_unlocked(core_id))
            return [cid for cid in ids if cid in self.charged]

    def charges_unlocked(self, core_id: str) -> list[Json]:
        return [i for path, body in self.calls if path.endswith("/chargeCredits")
                for i in body["items"] if i["id"] == core_id]  # fmt: skip

    def wait(self, done: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
        """Block until ``done()`` holds (re-checked at each call Core gets)."""
        with self._changed:
            if not self._changed.wait_for(done, timeout):
                raise AssertionError(f"fake Core: timed out waiting for {what}; got {self.calls}")

    def wait_states(self, core_id: str, states: list[str]) -> None:
        def seen() -> bool:
            return [s for _, s in self.updates(core_id)][: len(states)] == states

        self.wait(seen, f"updates {states} of job {core_id}")

    # -- the server -----------------------------------------------------------------------

    def up(self) -> None:
        core = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                status, answer = core._answer(self.path, body, self.headers.get("Authorization"))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        if self.certs is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certs / "server-cert.pem", self.certs / "server-key.pem")
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: jobyard's calls are refused (connection refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _answer(self, path: str, body: Json, authorization: str | None) -> tuple[int, Json]:
        with self._changed:
            self.authorization.add(authorization or "")
            if self.refuse:
                self.refused += 1
                self._changed.notify_all()
                return 503, {"why": "Core is refusing calls", "errorCode": "UNAVAILABLE"}
            answer: Json = {}
            if path.endswith("/chargeCredits"):
                answer = self._charge(body["items"])
            self.calls.append((path, body))
            self._changed.notify_all()
            if path.endswith("/chargeCredits") and self.lose_charge_answers > 0:
                self.lose_charge_answers -= 1  # charged, but the provider never hears so
                return 503, {"why": "answer lost", "errorCode": "UNAVAILABLE"}
            return 200, answer

    def _charge(self, items: list[Json]) -> Json:
        poor, duplicate = [], []
        for item in items:
            if item["id"] in self.poor:
                poor.append({"id": item["id"]})
            elif item["chargeId"] in self.charged:
                duplicate.append({"id": item["id"]})
            else:
                self.charged.add(item["chargeId"])
        return {"insufficientFunds": poor, "duplicateCharges": duplicate}

    def close(self) -> None:
        self.down()


def provider_config(tmp_path: Path, core: FakeCore, **ucloud: Any) -> Path:
    """The HTTP tests' config with seed 000's product and Core at ``core``."""
    config = yaml.safe_load(HTTP_CONFIG_FILE.read_text())
    token_file = tmp_path / "core-token"
    token_file.write_text(CORE_TOKEN + "\n")
    config["ucloud"]["products"].append({
        "name": "example-compute-1", "category": {"name": "example-compute",
                                                  "provider": "example"},
        "cpu": 1, "memoryInGigs": 1, "pricePerUnit": 1000000,
        "unitOfPrice": "CREDITS_PER_MINUTE", "description": "An example machine",
    })  # fmt: skip
    config["ucloud"]["core"] = {"url": core.url, "tokenFile": str(token_file)}
    if core.certs is not None:
        config["ucloud"]["core"]["caFile"] = str(core.certs / "ca-cert.pem")
    config["ucloud"].update(ucloud)
    path = tmp_path / "provider-config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def runnable(job: Json, core_id: str, argv: list[str], *, seconds: int = 3600) -> Json:
    """Seed 000's Job, as Core would send it for a NATIVE tool that runs ``argv`` (words)."""
    job = copy.deepcopy(job)
    job["id"] = core_id
    job["specification"]["timeAllocation"] = {"hours": 0, "minutes": 0, "seconds": seconds}
    invocation = job["status"]["resolvedApplication"]["invocation"]
    invocation["tool"]["tool"]["description"]["backend"] = "NATIVE"
    invocation["invocation"] = [{"type": "word", "word": word} for word in argv]
    return job


__all__ = [
    "CORE_TOKEN",
    "FakeCore",
    "provider_config",
    "runnable",
    "seed000_bodies",
    "seed000_calls",
]
