"""The HTTPS face with a real server: tokens (401s), roles and owner scoping (404), errors,
and one model: jobs of the gRPC face are the HTTP face's and the other way round."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from jobyard.client import Client
from jobyard.domain.jobs import utcnow
from tests.integration.conftest import ServerThread
from tests.integration.http_support import Http, make_token, revoke_token, wait_state


@pytest.fixture
def data_dir(http_server: ServerThread) -> Path:
    return http_server.data_dir


def test_openapi_describes_every_endpoint(http: Http) -> None:
    spec = http.ok("GET", "/openapi.json", "unused")
    paths = set(spec["paths"])
    assert {"/api/jobs", "/api/jobs/retrieve", "/api/jobs/browse", "/api/jobs/extend",
            "/api/jobs/terminate", "/api/jobs/suspend", "/api/jobs/unsuspend",
            "/api/jobs/retrieveProducts", "/api/jobs/retrieveUtilization"} <= paths  # fmt: skip
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def _why(response: object) -> tuple[int, str, str]:
    body = response.json()  # type: ignore[attr-defined]
    return response.status_code, body["errorCode"], body["why"]  # type: ignore[attr-defined]


def test_missing_bad_expired_and_revoked_tokens_are_401_saying_which(
    http: Http, data_dir: Path
) -> None:
    path = "/api/jobs/browse"
    status, code, why = _why(http.call("GET", path))
    assert (status, code) == (401, "UNAUTHENTICATED") and "missing bearer token" in why
    status, _, why = _why(http.call("GET", path, "jy_" + "x" * 43))
    assert status == 401 and "invalid bearer token" in why
    status, _, why = _why(http.call("GET", path, headers={"Authorization": "Basic abc"}))
    assert status == 401 and "scheme" in why
    expired = make_token(data_dir, "old", expires_at=utcnow() - timedelta(seconds=1))
    status, _, why = _why(http.call("GET", path, expired))
    assert status == 401 and "expired" in why and "old" in why
    token = make_token(data_dir, "leaver")
    assert http.call("GET", path, token).status_code == 200
    revoke_token(data_dir, "leaver")
    status, _, why = _why(http.call("GET", path, token))
    assert status == 401 and "revoked" in why and "leaver" in why


def test_another_users_job_is_404_and_admin_and_viewer_see_it(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["30"])
    alice = make_token(data_dir, "alice")
    status, code, why = _why(http.call("GET", "/api/jobs/retrieve", alice, params={"id": job.id}))
    assert (status, code) == (404, "NOT_FOUND") and job.id in why
    status, _, _ = _why(http.call("POST", "/api/jobs/terminate", alice,
                                  json={"items": [{"id": job.id}]}))  # fmt: skip
    assert status == 404
    assert grpc_admin.job(job.id).status in {"QUEUED", "INITIALIZING", "RUNNING"}
    assert http.ok("GET", "/api/jobs/browse", alice)["items"] == []
    viewer = make_token(data_dir, "auditor", "viewer")
    assert http.retrieve(viewer, job.id)["owner"] == {"createdBy": "admin", "project": None}
    status, code, why = _why(http.call("POST", "/api/jobs/terminate", viewer,
                                       json={"items": [{"id": job.id}]}))  # fmt: skip
    assert (status, code) == (403, "PERMISSION_DENIED")
    assert why == "role viewer is not allowed to perform operation stop_job"


def test_a_grpc_job_is_retrieved_extended_and_terminated_over_http(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"], time_limit=3600)
    admin = make_token(data_dir, "admin", "admin")
    running = wait_state(http, admin, job.id, "RUNNING")
    assert running["specification"]["timeAllocation"] == {"hours": 1, "minutes": 0, "seconds": 0}
    expires = running["status"]["expiresAt"]
    body = {
        "items": [{"jobId": job.id, "requestedTime": {"hours": 0, "minutes": 30, "seconds": 5}}]
    }
    assert http.ok("POST", "/api/jobs/extend", admin, json=body) == {"responses": [{}]}
    assert http.retrieve(admin, job.id)["status"]["expiresAt"] == expires + 1805_000
    assert http.ok("POST", "/api/jobs/terminate", admin, json={"items": [{"id": job.id}]}) == {
        "responses": [{}]
    }
    done = http.retrieve(admin, job.id)
    assert done["status"]["state"] == "SUCCESS" and done["status"]["expiresAt"] is None
    assert done["updates"][-1]["status"] == "Your job has been cancelled!"
    assert [u["state"] for u in done["updates"]] == ["IN_QUEUE", "RUNNING", "SUCCESS"]
    native = grpc_admin.job(job.id)
    assert (native.status, native.termination_reason) == ("STOPPED", "USER_STOP")


def test_suspend_and_unsuspend(http: Http, data_dir: Path, grpc_admin: Client) -> None:
    job = grpc_admin.submit("sleep", ["300"])
    admin = make_token(data_dir, "admin", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    http.ok("POST", "/api/jobs/suspend", admin, json={"items": [{"id": job.id}]})
    assert http.retrieve(admin, job.id)["status"]["state"] == "SUSPENDED"
    assert grpc_admin.job(job.id).status == "SUSPENDED"
    status, code, _ = _why(http.call("POST", "/api/jobs/suspend", admin,
                                     json={"items": [{"id": job.id}]}))  # fmt: skip
    assert (status, code) == (409, "FAILED_PRECONDITION")
    http.ok("POST", "/api/jobs/unsuspend", admin, json={"items": [{"id": job.id}]})
    job_view = http.retrieve(admin, job.id)
    assert job_view["status"]["state"] == "RUNNING"
    assert [u["state"] for u in job_view["updates"]] == [
        "IN_QUEUE",
        "RUNNING",
        "SUSPENDED",
        "RUNNING",
    ]


def test_browse_pages_and_filters(http: Http, data_dir: Path, grpc_admin: Client) -> None:
    admin = make_token(data_dir, "admin", "admin")
    ids = [grpc_admin.submit("true").id for _ in range(3)]
    for job_id in ids:
        grpc_admin.wait(job_id, timeout=30)
    first = http.ok("GET", "/api/jobs/browse", admin, params={"itemsPerPage": 2})
    assert first["itemsPerPage"] == 2 and len(first["items"]) == 2 and first["next"]
    rest = http.ok(
        "GET", "/api/jobs/browse", admin, params={"itemsPerPage": 2, "next": first["next"]}
    )
    assert [j["id"] for j in first["items"] + rest["items"]] == ids[::-1]
    assert rest["next"] is None
    success = http.ok("GET", "/api/jobs/browse", admin, params={"filterState": "SUCCESS"})
    assert len(success["items"]) == 3
    assert (
        http.ok("GET", "/api/jobs/browse", admin, params={"filterState": "RUNNING"})["items"] == []
    )
    status, code, why = _why(http.call("GET", "/api/jobs/browse", admin,
                                       params={"filterState": "DONE"}))  # fmt: skip
    assert (status, code) == (400, "INVALID_ARGUMENT") and "filterState" in why


def test_bad_requests_are_4xx_with_ucloud_errors_and_create_nothing(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    alice = make_token(data_dir, "alice")
    item = {"application": {"name": "a", "version": "1"},
            "product": {"id": "p", "category": "c", "provider": "x"}}  # fmt: skip
    cases = [
        ("{not json", 400),
        ('{"items": []}', 400),
        ('{"items": [' + _json({**item, "replicas": 0}) + "]}", 400),
        ('{"items": [' + _json({**item, "replicas": 100000}) + "]}", 400),
        ('{"items": [' + _json({**item, "timeAllocation": {"hours": -1}}) + "]}", 400),
        ('{"items": [' + _json({**item, "timeAllocation": {"hours": 10**9}}) + "]}", 400),
        ('{"items": [' + _json(item) + "]}", 400),  # unknown application
        ("[" * 100_000, 400),
        ('{"items": [' + _json({**item, "name": "x" * (2 * 1024 * 1024)}) + "]}", 413),
    ]
    for body, status in cases:
        response = http.call("POST", "/api/jobs", alice, content=body)
        assert response.status_code == status, (body[:80], response.text)
        assert set(response.json()) == {"why", "errorCode"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"items": [{"name": "'
        for _ in range(2 * 1024):
            yield b"x" * 1024

    streamed = http.call("POST", "/api/jobs", alice, content=chunks())
    assert (streamed.status_code, streamed.json()["errorCode"]) == (413, "PAYLOAD_TOO_LARGE")
    assert grpc_admin.jobs() == []


def test_retrieve_utilization_counts_what_runs(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    admin = make_token(data_dir, "admin", "admin")
    job = grpc_admin.submit("sleep", ["300"], max_cpu=50, max_memory=64)
    wait_state(http, admin, job.id, "RUNNING")
    usage = http.ok("GET", "/api/jobs/retrieveUtilization", admin, params={"jobId": job.id})
    assert usage["usedCapacity"] == {"cpu": 0.5, "memory": 64 * 1024 * 1024}
    assert usage["queueStatus"] == {"running": 1, "pending": 0}
    assert usage["capacity"]["cpu"] >= 1


def _json(value: object) -> str:
    import json

    return json.dumps(value)
