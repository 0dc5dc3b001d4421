"""The HTTPS face as a user meets it: `jobyard server --http-listen` as a daemon, a token
from `jobyard tokens create`, HTTPS calls, the CLI seeing the same jobs, a clean SIGTERM."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.daemon import Daemon, free_port

CONFIG = Path(__file__).resolve().parents[1] / "data" / "http-config.yml"


@pytest.fixture
def http_daemon(tmp_path: Path) -> Iterator[tuple[Daemon, int]]:
    daemon = Daemon(tmp_path)
    port = free_port()
    daemon.start("--http-listen", f"127.0.0.1:{port}", "--config", str(CONFIG))
    yield daemon, port
    daemon.stop()


def test_token_https_create_and_the_cli_sees_the_job(http_daemon: tuple[Daemon, int]) -> None:
    daemon, port = http_daemon
    made = daemon.run("tokens", "create", "--data-dir", "data", "--name", "alice",
                      "--role", "user", "--expires", "1d", cwd=daemon.root, check=True)  # fmt: skip
    token = made.stdout.strip()
    assert made.stdout == token + "\n"
    context = ssl.create_default_context(cafile=str(daemon.certs / "ca-cert.pem"))
    with httpx.Client(base_url=f"https://localhost:{port}", verify=context, timeout=30) as web:
        assert web.get("/api/jobs/browse").status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        product = {"id": "example-compute", "category": "example-compute", "provider": "example"}
        text = {"text": {"type": "text", "value": "hi there"}}
        body = {"items": [{"application": {"name": "echo", "version": "1"}, "product": product,
                           "parameters": text}]}  # fmt: skip
        created = web.post("/api/jobs", headers=auth, json=body)
        assert created.status_code == 200, created.text
        job_id = created.json()["responses"][0]["id"]
        done = daemon.wait(job_id)  # the CLI, as admin, over gRPC: the same job
        assert done["status"] == "COMPLETED"
        log = daemon.run("log", job_id, check=True)
        assert log.stdout == "hi there\n"
        view = web.get("/api/jobs/retrieve", headers=auth, params={"id": job_id}).json()
        assert view["status"]["state"] == "SUCCESS"
        assert view["owner"] == {"createdBy": "alice", "project": None}
    listed = daemon.run("tokens", "list", "--data-dir", "data", cwd=daemon.root, check=True)
    assert "alice" in listed.stdout and token not in listed.stdout
    assert daemon.process is not None
    daemon.stop()
    log = daemon.log()
    assert "http listening" in log and "Finished server process" in log
    assert "jobyard/http/" not in log and "Exception in ASGI application" not in log, log


def test_http_listen_is_checked(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    result = daemon.run("server", "--certs", "certs", "--http-listen", "nowhere", cwd=tmp_path)
    assert result.returncode != 0 and "--http-listen" in result.stderr
    assert isinstance(result, subprocess.CompletedProcess)
