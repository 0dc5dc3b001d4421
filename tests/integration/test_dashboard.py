"""The dashboard and /metrics on a real server (HTTPS, SQLite, the local runtime): sign-in
and its cookie, CSRF refusals, scoping of pages and buttons, live updates, metrics' auth
and content."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jobyard.client import Client
from jobyard.domain.errors import JobyardError
from tests.integration.conftest import ServerThread
from tests.integration.http_support import Http, make_token, wait_state

PRODUCT = {"id": "example-compute", "category": "example-compute", "provider": "example"}


@pytest.fixture
def data_dir(http_server: ServerThread) -> Path:
    return http_server.data_dir


class Browsers:
    """Cookie-keeping clients, as browsers are (with the Origin header a page sends)."""

    def __init__(self, http: Http) -> None:
        self.http = http
        self.clients: list[httpx.Client] = []

    def new(self) -> httpx.Client:
        origin = f"https://localhost:{self.http.port}"
        client = httpx.Client(base_url=origin, verify=self.http.context, timeout=30,
                              headers={"Origin": origin})  # fmt: skip
        self.clients.append(client)
        return client


@pytest.fixture
def browsers(http: Http) -> Iterator[Browsers]:
    made = Browsers(http)
    yield made
    for client in made.clients:
        client.close()


def sign_in(browsers: Browsers, token: str) -> tuple[httpx.Client, str]:
    """A signed-in browser and the CSRF token of its pages."""
    client = browsers.new()
    response = client.post("/ui/login", data={"token": token})
    assert response.status_code == 303, response.text
    page = client.get("/")
    assert page.status_code == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match is not None
    return client, match.group(1)


def test_sign_in_sets_a_strict_session_cookie_and_pages_carry_a_csp(
    http: Http, browsers: Browsers, data_dir: Path
) -> None:
    token = make_token(data_dir, "alice")
    client = browsers.new()
    page = client.get("/")
    assert 'name="token"' in page.text and "Sign in" in page.text
    response = client.post("/ui/login", data={"token": token})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert token not in cookie
    jobs = client.get("/")
    assert "Signed in as <strong>alice</strong>" in jobs.text
    csp = jobs.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert re.search(r"<script(?![^>]*\bsrc=)", jobs.text) is None  # no inline script
    assert (
        client.get("/ui/static/dashboard.js").headers["content-type"].startswith("text/javascript")
    )


def test_a_bad_token_or_another_origin_cannot_sign_in(
    http: Http, browsers: Browsers, data_dir: Path
) -> None:
    client = browsers.new()
    response = client.post("/ui/login", data={"token": "jy_" + "x" * 43})
    assert response.status_code == 401 and "invalid bearer token" in response.text
    assert "set-cookie" not in response.headers
    token = make_token(data_dir, "alice")
    forged = client.post("/ui/login", data={"token": token},
                         headers={"Origin": "https://evil.example"})  # fmt: skip
    assert forged.status_code == 401 and "cross-origin" in forged.text
    assert "set-cookie" not in forged.headers


def test_buttons_need_the_csrf_token_and_then_stop_the_job(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"])
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    client, csrf = sign_in(browsers, admin)
    refused = client.post(f"/ui/jobs/{job.id}/stop", json={})
    assert refused.status_code == 403 and "CSRF" in refused.json()["why"]
    wrong = client.post(f"/ui/jobs/{job.id}/stop", json={}, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    assert grpc_admin.job(job.id).status == "RUNNING"
    done = client.post(f"/ui/jobs/{job.id}/stop", json={}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text
    assert done.json()["job"]["status"] == "STOPPED"
    assert grpc_admin.job(job.id).status == "STOPPED"


def test_signed_out_and_cross_origin_requests_change_nothing(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"])
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    anonymous = browsers.new().post(f"/ui/jobs/{job.id}/stop", json={})
    assert anonymous.status_code == 401
    client, csrf = sign_in(browsers, admin)
    client.post("/ui/logout", data={"csrf": csrf})
    after = client.post(f"/ui/jobs/{job.id}/stop", json={}, headers={"X-CSRF-Token": csrf})
    assert after.status_code == 401
    assert grpc_admin.job(job.id).status == "RUNNING"


def test_roles_decide_buttons_and_users_see_only_their_jobs(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"], name="admins-job")
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    viewer, _ = sign_in(browsers, make_token(data_dir, "auditor", "viewer"))
    page = viewer.get(f"/ui/jobs/{job.id}")
    assert page.status_code == 200 and "admins-job" in page.text
    assert 'data-action="stop"' not in page.text
    admin_page = sign_in(browsers, admin)[0].get(f"/ui/jobs/{job.id}")
    assert 'data-action="stop"' in admin_page.text
    assert 'data-action="resume"' in admin_page.text  # present, hidden until SUSPENDED
    alice, _ = sign_in(browsers, make_token(data_dir, "alice"))
    assert "admins-job" not in alice.get("/").text
    missing = alice.get(f"/ui/jobs/{job.id}")
    assert missing.status_code == 404 and "job not found" in missing.text


def test_jobs_table_filters_and_pages(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    admin = make_token(data_dir, "root", "admin")
    first = grpc_admin.submit("true", name="tagged", labels={"team": "blue"})
    grpc_admin.wait(first.id, timeout=30)
    for _ in range(25):
        grpc_admin.submit("true", name="filler")
    client, _ = sign_in(browsers, admin)
    page = client.get("/")
    assert page.text.count('<tr data-job-id="') == 25 and "Next page" in page.text
    link = re.search(r'<a href="([^"]+)" rel="next">', page.text)
    assert link is not None
    second = client.get(link.group(1).replace("&amp;", "&"))
    assert first.id in second.text
    labelled = client.get("/", params={"label": "team=blue"})
    assert labelled.text.count('<tr data-job-id="') == 1 and first.id in labelled.text
    assert client.get("/", params={"owner": "nobody"}).text.count('<tr data-job-id="') == 0
    bad = client.get("/", params={"status": "DONE"})
    assert bad.status_code == 400 and "invalid status" in bad.text


def test_job_page_shows_usage_and_downloads_output_and_files(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    script = "mkdir -p out; printf 'a,b\\n1,2\\n' > out/table.csv; echo done"
    job = grpc_admin.submit("sh", ["-c", script])
    grpc_admin.wait(job.id, timeout=30)
    client, _ = sign_in(browsers, make_token(data_dir, "root", "admin"))
    page = client.get(f"/ui/jobs/{job.id}")
    assert page.status_code == 200
    assert "CPU time" in page.text and "Peak memory" in page.text
    assert "out/table.csv" in page.text
    output = client.get(f"/ui/jobs/{job.id}/output")
    assert output.text == "done\n"
    assert (
        output.headers["content-disposition"] == f'attachment; filename="{job.id[:8]}-output.log"'
    )
    table = client.get(f"/ui/jobs/{job.id}/files", params={"path": "out/table.csv"})
    assert table.content == b"a,b\n1,2\n"
    assert table.headers["content-disposition"] == 'attachment; filename="table.csv"'
    escape = client.get(f"/ui/jobs/{job.id}/files", params={"path": "../../server.key"})
    assert escape.status_code == 400 and "server.key" not in escape.text.split("<main")[0]


def test_extend_suspend_and_resume_buttons(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"], time_limit=600)
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    client, csrf = sign_in(browsers, admin)
    headers = {"X-CSRF-Token": csrf}
    before = datetime.fromisoformat(grpc_admin.job(job.id).expires_at)
    extended = client.post(f"/ui/jobs/{job.id}/extend", json={"minutes": 30}, headers=headers)
    assert extended.status_code == 200, extended.text
    after = datetime.fromisoformat(grpc_admin.job(job.id).expires_at)
    assert (after - before).total_seconds() == 1800
    for minutes in (0, -5, "ten", 10**9):
        bad = client.post(f"/ui/jobs/{job.id}/extend", json={"minutes": minutes}, headers=headers)
        assert bad.status_code == 400 and "minutes" in bad.json()["why"]
    suspended = client.post(f"/ui/jobs/{job.id}/suspend", headers=headers)
    assert suspended.json()["job"]["actions"] == ["stop", "extend", "resume"]
    assert grpc_admin.job(job.id).status == "SUSPENDED"
    again = client.post(f"/ui/jobs/{job.id}/suspend", headers=headers)
    assert again.status_code == 409 and "SUSPENDED" in again.json()["why"]
    resumed = client.post(f"/ui/jobs/{job.id}/resume", headers=headers)
    assert resumed.json()["job"]["status"] == "RUNNING"
    assert client.post(f"/ui/jobs/{job.id}/explode", headers=headers).status_code == 400


def test_wallets_page_shows_a_user_its_own_and_admins_every_wallet(
    http: Http, browsers: Browsers, http_server: ServerThread, data_dir: Path
) -> None:
    assert http_server.running is not None
    ledger = http_server.running.ledger
    assert ledger is not None

    async def deposit() -> None:  # on the server's own thread, as its other writes
        ledger.deposit("alice", "", 1234)
        ledger.deposit("bob", "lab", 98765)

    http_server.call(deposit())
    alice, _ = sign_in(browsers, make_token(data_dir, "alice"))
    page = alice.get("/ui/wallets").text
    assert "<td>alice</td><td>(personal)</td><td>1234</td>" in page and "98765" not in page
    admin, _ = sign_in(browsers, make_token(data_dir, "root", "admin"))
    everything = admin.get("/ui/wallets").text
    assert "1234" in everything and "<td>bob</td><td>lab</td><td>98765</td>" in everything


def _live(http: Http, cookie: str, origin: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"Cookie": f"jobyard_session={cookie}"}
    headers["Origin"] = origin or f"https://localhost:{http.port}"
    return connect(f"wss://localhost:{http.port}/ui/live", ssl=http.context,
                   additional_headers=headers)  # fmt: skip


def test_live_socket_sends_history_then_output_until_the_end(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    admin = make_token(data_dir, "root", "admin")
    job = grpc_admin.submit("sh", ["-c", "echo first; sleep 1; echo second"])
    client, _ = sign_in(browsers, admin)
    session = client.cookies["jobyard_session"]
    with _live(http, session) as ws:
        gauge = _samples(http.call("GET", "/metrics", admin).text)
        assert gauge['jobyard_http_connections{kind="dashboard"}'] == 1
        ws.send(json.dumps({"watch": "job", "id": job.id}))
        output, statuses = "", []
        while True:
            message = json.loads(ws.recv(60))
            if message["type"] == "end":
                break
            if message["type"] == "output":
                output += message["text"]
            if message["type"] == "job":
                statuses.append(message["job"]["status"])
    assert output == "first\nsecond\n"
    assert statuses[-1] == "COMPLETED"


def test_new_jobs_are_announced_only_to_those_who_may_see_them(
    http: Http, browsers: Browsers, data_dir: Path, grpc_admin: Client
) -> None:
    alice = make_token(data_dir, "alice")
    client, _ = sign_in(browsers, alice)
    with _live(http, client.cookies["jobyard_session"]) as ws:
        ws.send(json.dumps({"watch": "jobs", "ids": [], "new": True}))
        hidden = grpc_admin.submit("true")  # admin's: alice may not see it
        item = {"application": {"name": "echo", "version": "1"}, "product": PRODUCT,
                "parameters": {"text": {"type": "text", "value": "hi"}}}  # fmt: skip
        created = http.ok("POST", "/api/jobs", alice, json={"items": [item]})
        own = created["responses"][0]["id"]
        # Changes reach a watcher in order: admin's job would have come first.
        message = json.loads(ws.recv(60))
        assert (message["type"], message["job"]["id"]) == ("new", own)
        assert message["job"]["owner"] == "alice" and hidden.id != own


def test_live_socket_refuses_other_origins_and_no_session(
    http: Http, browsers: Browsers, data_dir: Path
) -> None:
    client, _ = sign_in(browsers, make_token(data_dir, "alice"))
    session = client.cookies["jobyard_session"]
    with pytest.raises(InvalidStatus) as refused:
        _live(http, session, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        _live(http, "not-a-session")
    samples = _samples(http.call("GET", "/metrics", make_token(data_dir, "ops", "viewer")).text)
    assert samples['jobyard_requests_total{code="403",face="http",method="WS /ui/live"}'] == 2


def test_metrics_need_an_admin_or_viewer_token(
    http: Http, browsers: Browsers, data_dir: Path
) -> None:
    assert http.call("GET", "/metrics").status_code == 401
    user = make_token(data_dir, "alice")
    denied = http.call("GET", "/metrics", user)
    assert denied.status_code == 403 and "read_metrics" in denied.json()["why"]
    for role in ("viewer", "admin"):
        token = make_token(data_dir, f"ops-{role}", role)
        response = http.call("GET", "/metrics", token)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_metrics_count_jobs_latencies_output_and_requests(
    http: Http, http_server: ServerThread, certs_dir: Path, data_dir: Path, grpc_admin: Client
) -> None:
    viewer = make_token(data_dir, "ops", "viewer")
    done = grpc_admin.submit("sh", ["-c", "printf 12345"])
    grpc_admin.wait(done.id, timeout=30)
    running = grpc_admin.submit("sleep", ["300"])
    wait_state(http, viewer, running.id, "RUNNING")
    http.call("GET", "/api/jobs/browse", "jy_" + "x" * 43)  # a 401, counted
    viewer_grpc = Client(server=f"localhost:{http_server.port}", ca=str(certs_dir / "ca-cert.pem"),
                         cert=str(certs_dir / "viewer-client-cert.pem"),
                         key=str(certs_dir / "viewer-client-key.pem"))  # fmt: skip
    with viewer_grpc, pytest.raises(JobyardError):
        viewer_grpc.submit("true")  # refused: counted, not timed
    text = http.call("GET", "/metrics", viewer).text
    samples = _samples(text)
    assert samples['jobyard_jobs{status="COMPLETED"}'] == 1
    assert samples['jobyard_jobs{status="RUNNING"}'] == 1
    assert samples["jobyard_queue_depth"] == 0
    assert samples["jobyard_output_bytes_total"] >= 5
    assert samples['jobyard_launch_latency_seconds_count{backend="local"}'] == 2
    assert samples['jobyard_end_latency_seconds_count{status="COMPLETED"}'] == 1
    assert samples['jobyard_submit_latency_seconds_count{face="grpc"}'] == 2
    assert samples["jobyard_store_commit_seconds_count"] > 0
    run_job = "/jobyard.v1.JobyardService/RunJob"
    assert samples[f'jobyard_requests_total{{code="OK",face="grpc",method="{run_job}"}}'] == 2
    browse = "GET /api/jobs/browse"
    assert samples[f'jobyard_requests_total{{code="401",face="http",method="{browse}"}}'] == 1
    denied = f'jobyard_requests_total{{code="PERMISSION_DENIED",face="grpc",method="{run_job}"}}'
    assert samples[denied] == 1


def _samples(text: str) -> dict[str, float]:
    """``name{labels sorted}`` -> value of every sample of an exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if "{" in name:
            base, _, labels = name.partition("{")
            parts = sorted(labels.rstrip("}").split(","))
            name = base + "{" + ",".join(parts) + "}"
        out[name] = float(value)
    return out
