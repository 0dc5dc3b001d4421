"""Creating jobs over HTTP from the ucloud: catalog (tests/data/http-config.yml), on a real
server: one model with gRPC, argv not shell, refusals that create nothing, 402 without
credits, wallets, project scoping, include flags and retrieveProducts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobyard.accounting.sqlite import SQLiteLedger
from jobyard.client import Client
from jobyard.logs import JobLayout
from jobyard.store import SQLiteStore
from tests.integration.conftest import ServerThread
from tests.integration.http_support import (
    Http,
    follow,
    make_token,
    messages_until_response,
    wait_state,
)

PRODUCT = {"id": "example-compute", "category": "example-compute", "provider": "example"}
PRICED = {**PRODUCT, "id": "priced-compute"}
SLEEPER = {"name": "acme-web-application", "version": "1.0.0"}
ECHO = {"name": "echo", "version": "1"}


def item(application: dict[str, str] = SLEEPER, **fields: Any) -> dict[str, Any]:
    return {"application": application, "product": PRODUCT, **fields}


def create(http: Http, token: str, *items: dict[str, Any]) -> Any:
    return http.call("POST", "/api/jobs", token, json={"items": list(items)})


@pytest.fixture
def data_dir(http_server: ServerThread) -> Path:
    return http_server.data_dir


def test_a_created_job_is_the_grpc_faces_job(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    alice = make_token(data_dir, "alice")
    answer = create(http, alice, item(timeAllocation={"hours": 1, "minutes": 0, "seconds": 0}))
    job_id = answer.json()["responses"][0]["id"]
    native = grpc_admin.job(job_id)
    assert (native.command, list(native.args)) == ("sleep", ["86400"])
    assert (native.max_cpu, native.max_memory) == (100, 1024)  # the product's 1 cpu, 1 GiB
    assert native.owner == "alice"
    assert grpc_admin.details(job_id).job.labels["ucloud.application"] == "acme-web-application"
    wait_state(http, alice, job_id, "RUNNING")
    grpc_admin.stop(job_id)
    view = http.retrieve(alice, job_id)
    assert view["status"]["state"] == "SUCCESS"
    assert view["updates"][-1]["status"] == "Your job has been cancelled!"


def test_parameters_are_argv_never_shell_text(http: Http, data_dir: Path) -> None:
    alice = make_token(data_dir, "alice")
    text = "$(id); rm -rf / `whoami` && echo pwned"
    parameters = {"text": {"type": "text", "value": text}}
    answer = create(http, alice, item(ECHO, parameters=parameters))
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["responses"][0]["id"]
    with http.websocket() as ws:
        follow(ws, "out", job_id, alice)
        messages = messages_until_response(ws)
    output = "".join(i["stdout"] for m in messages[1:-1] for i in m["payload"]["log"])
    assert output == text + "\n"


def test_refusals_name_the_problem_and_create_nothing(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    alice = make_token(data_dir, "alice")
    cases = [
        (item({"name": "acme-container", "version": "1"}), "DOCKER"),
        (item({"name": "nope", "version": "1"}), "unknown application"),
        ({**item(), "product": {**PRODUCT, "id": "nope"}}, "unknown product"),
        (item(ECHO), "mandatory"),
        (item(ECHO, parameters={"text": {"type": "integer", "value": 1}}),
         "text"),
        (item(sshEnabled=True), "sshEnabled"),
        (item(resources=[{"type": "file", "path": "/x"}]), "resources"),
    ]  # fmt: skip
    for body, words in cases:
        response = create(http, alice, item(), body)  # the valid first item is not created
        assert response.status_code == 400, (body, response.text)
        assert words in response.json()["why"], (words, response.text)
        assert response.json()["errorCode"] == "INVALID_ARGUMENT"
    assert grpc_admin.jobs() == []


def test_no_credits_is_402_and_no_job_then_a_deposit_pays(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    bob = make_token(data_dir, "bob")
    response = create(http, bob, {**item(), "product": PRICED})
    assert response.status_code == 402, response.text
    assert response.json()["errorCode"] == "PAYMENT_REQUIRED"
    assert grpc_admin.jobs() == []
    store = SQLiteStore(JobLayout(data_dir).database)
    try:
        SQLiteLedger(store.connection).deposit("bob", "", 5000)
    finally:
        store.close()
    wallets = http.ok("GET", "/api/accounting/wallets", bob)["items"]
    assert wallets == [{"owner": {"createdBy": "bob", "project": None}, "balance": 5000,
                        "spent": 0, "unit": "CREDITS"}]  # fmt: skip
    response = create(http, bob, {**item(), "product": PRICED})
    assert response.status_code == 200, response.text
    assert http.ok("GET", "/api/accounting/wallets", make_token(data_dir, "eve"))["items"] == []


def test_project_members_see_each_others_jobs_and_others_do_not(http: Http, data_dir: Path) -> None:
    alice = make_token(data_dir, "alice", project="lab")
    bob = make_token(data_dir, "bob", project="lab")
    carol = make_token(data_dir, "carol")
    job_id = create(http, alice, item()).json()["responses"][0]["id"]
    view = http.retrieve(bob, job_id)
    assert view["owner"] == {"createdBy": "alice", "project": "lab"}
    assert [j["id"] for j in http.ok("GET", "/api/jobs/browse", bob)["items"]] == [job_id]
    assert http.call("GET", "/api/jobs/retrieve", carol, params={"id": job_id}).status_code == 404
    assert http.ok("GET", "/api/jobs/browse", carol)["items"] == []


def test_include_flags_and_retrieve_products(http: Http, data_dir: Path) -> None:
    alice = make_token(data_dir, "alice")
    job_id = create(http, alice, item(parameters=None)).json()["responses"][0]["id"]
    plain = http.retrieve(alice, job_id)
    assert plain["status"]["resolvedProduct"] is None
    assert plain["status"]["resolvedApplication"] is None
    full = http.retrieve(alice, job_id, includeProduct="true", includeApplication="true",
                         includeSupport="true", includeParameters="true")  # fmt: skip
    status = full["status"]
    assert status["resolvedProduct"]["name"] == "example-compute"
    assert status["resolvedProduct"]["memoryInGigs"] == 1
    assert status["resolvedApplication"]["metadata"]["name"] == "acme-web-application"
    assert status["resolvedSupport"]["native"]["enabled"] is True
    assert status["jobParametersJson"]["request"]["application"] == SLEEPER
    products = http.ok("GET", "/api/jobs/retrieveProducts", alice)["productsByProvider"]
    offered = {p["product"]["name"]: p["support"] for p in products["example"]}
    assert set(offered) == {"example-compute", "priced-compute"}
    assert offered["example-compute"]["docker"]["enabled"] is False
    assert offered["example-compute"]["native"]["timeExtension"] is True


def test_an_identical_running_job_is_refused_unless_duplicates_are_allowed(
    http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    alice = make_token(data_dir, "alice")
    first = create(http, alice, item()).json()["responses"][0]["id"]
    again = create(http, alice, item())
    assert again.status_code == 409 and first in again.json()["why"]
    assert again.json()["errorCode"] == "FAILED_PRECONDITION"
    other = create(http, alice, item(parameters={"seconds": {"type": "integer", "value": 5}}))
    assert other.status_code == 200, other.text
    allowed = create(http, alice, item(allowDuplicateJob=True))
    assert allowed.status_code == 200, allowed.text
    assert create(http, make_token(data_dir, "bob"), item()).status_code == 200  # not bob's
    assert len(grpc_admin.jobs()) == 4
