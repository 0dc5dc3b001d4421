"""The UCloud provider face, tried as UCloud/Core would: seed 000's bodies against the real
server (real TLS, real SQLite, the real local runtime), Core itself a recording fake
(:class:`~tests.integration.provider_support.FakeCore`) that can refuse calls or go down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobyard.client import Client
from jobyard.domain.access import SYSTEM
from jobyard.domain.status import Status
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread
from tests.integration.http_support import Http, make_token
from tests.integration.provider_support import (
    CORE_TOKEN,
    FakeCore,
    provider_config,
    runnable,
    seed000_bodies,
)
from tests.unit.ucloud_samples import seed_provider_create

JOBS = "/ucloud/example/jobs"
RATE = 60.0  # a charged minute per wall second


@pytest.fixture
def core() -> Iterator[FakeCore]:
    fake = FakeCore()
    yield fake
    fake.close()


@pytest.fixture
def provider(tmp_path: Path, certs_dir: Path, core: FakeCore) -> Iterator[ServerThread]:
    if root_problem():
        pytest.skip(root_problem() or "")
    config = provider_config(tmp_path, core, accountingIntervalSeconds=0.5)
    thread = ServerThread(tmp_path / "data", certs_dir, http_listen="127.0.0.1:0",
                          config_file=config, charge_rate=RATE)  # fmt: skip
    thread.start()
    yield thread
    thread.close()


@pytest.fixture
def http(provider: ServerThread, certs_dir: Path) -> Iterator[Http]:
    assert provider.running is not None
    client = Http(provider.running.http_port, certs_dir / "ca-cert.pem")
    yield client
    client.close()


@pytest.fixture
def token(provider: ServerThread) -> str:
    return make_token(provider.data_dir, "ucloud-core", "ucloud")


def create(http: Http, token: str, *jobs: dict[str, Any]) -> list[str]:
    answer = http.ok("POST", JOBS, token, json={"items": list(jobs)})
    return [r["id"] for r in answer["responses"]]


def job_state(server: ServerThread, job_id: str) -> Status:
    assert server.running is not None
    return server.running.engine.job(SYSTEM, job_id).status


def seed_update(index: int, core_id: str) -> dict[str, Any]:
    """Seed 000's ``index``-th jobs.control.update item, for Core's job ``core_id``."""
    item = dict(seed000_bodies("/api/jobs/control/update")[index]["items"][0])
    item["id"] = core_id
    return item


# -- who may call --------------------------------------------------------------------------


def test_only_cores_token_is_served(provider: ServerThread, http: Http, token: str) -> None:
    path = f"{JOBS}/retrieveProducts"
    missing = http.call("GET", path)
    assert missing.status_code == 401 and missing.json()["errorCode"] == "UNAUTHENTICATED"
    for role in ("user", "admin", "viewer"):
        other = make_token(provider.data_dir, f"someone-{role}", role)
        refused = http.call("GET", path, other)
        assert refused.status_code == 403, refused.text
        assert refused.json()["why"] == (
            f"role {role} is not allowed to perform operation ucloud_provider"
        )
        assert http.call("POST", JOBS, other, json={"items": [seed_provider_create()]}
                         ).status_code == 403  # fmt: skip
    assert http.call("GET", path, token).status_code == 200
    assert http.call("GET", "/ucloud/elsewhere/jobs/retrieveProducts", token).status_code == 404


def test_products_claim_only_what_works(http: Http, token: str) -> None:
    answer = http.ok("GET", f"{JOBS}/retrieveProducts", token)
    products = {r["product"]["id"]: r for r in answer["responses"]}
    support = products["example-compute-1"]
    assert support["product"] == {"id": "example-compute-1", "category": "example-compute",
                                  "provider": "example"}  # fmt: skip
    assert support["native"] == {"enabled": True, "logs": True, "vnc": False, "terminal": False,
                                 "timeExtension": True, "utilization": True, "web": False}  # fmt: skip
    assert not any(support["docker"].values()) and not any(support["virtualMachine"].values())
    assert support["maintenance"] is None


# -- create ----------------------------------------------------------------------------------


def test_seed_create_with_a_docker_tool_is_refused_naming_the_backend(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    seed = seed000_bodies("/ucloud/PROVIDERID/jobs")[0]
    refused = http.call("POST", JOBS, token, json=seed)
    assert refused.status_code == 400, refused.text
    assert "DOCKER" in refused.json()["why"]
    assert provider.running is not None and provider.running.engine.jobs(SYSTEM) == []
    # The outbox is sent in order: had the refused create queued anything, it came first.
    (job_id,) = create(http, token, runnable(seed["items"][0], "70001", ["true"]))
    core.wait_states("70001", ["RUNNING", "SUCCESS"])
    assert {core_id for core_id, _ in core.updates()} == {"70001"}
    assert core.authorization == {f"Bearer {CORE_TOKEN}"}


def test_a_created_job_runs_and_core_hears_the_seeds_updates(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    job = runnable(seed_provider_create(), "54112", ["cat", "/etc/ucloud/job_id.txt"])
    (job_id,) = create(http, token, job)
    assert provider.running is not None
    native = provider.running.engine.job(SYSTEM, job_id)
    assert native.owner == "user" and native.spec.labels["ucloud.jobId"] == "54112"
    core.wait_states("54112", ["RUNNING", "SUCCESS"])
    assert core.update_items("54112") == [seed_update(0, "54112"), seed_update(1, "54112")]
    # A retried create (same Core id) is the same job, not a second one.
    assert create(http, token, job) == [job_id]
    assert len(provider.running.engine.jobs(SYSTEM)) == 1
    # The rank read Core's id, not jobyard's, in /etc/ucloud/job_id.txt.
    assert provider.running.hub.size(job_id) > 0
    assert (provider.running.engine.layout.output(job_id)).read_text() == "54112\n"


def test_a_failed_job_reports_failure_with_the_reason(
    http: Http, token: str, core: FakeCore
) -> None:
    create(http, token, runnable(seed_provider_create(), "70002", ["false"]))
    core.wait_states("70002", ["RUNNING", "FAILURE"])
    status = core.update_items("70002")[-1]["update"]["status"]
    assert status == "The job has failed: failed: exit code 1 (EXITED)"


def test_a_job_past_its_time_allocation_expires(http: Http, token: str, core: FakeCore) -> None:
    create(http, token, runnable(seed_provider_create(), "70003", ["sleep", "600"], seconds=1))
    core.wait_states("70003", ["RUNNING", "EXPIRED"])


# -- the outbox ------------------------------------------------------------------------------


def test_updates_wait_out_a_core_outage_and_a_restart_in_order(
    provider: ServerThread, http: Http, token: str, core: FakeCore, certs_dir: Path
) -> None:
    core.down()
    first, second = create(http, token, runnable(seed_provider_create(), "80001", ["true"]),
                           runnable(seed_provider_create(), "80002", ["sleep", "600"]))  # fmt: skip
    with admin_client(provider, certs_dir) as admin:
        assert admin.wait(first, timeout=60).status == "COMPLETED"
    provider.stop()  # jobyard goes away with every update unsent ...
    provider.start()  # ... and comes back while Core is still down
    core.up()
    core.wait_states("80001", ["RUNNING", "SUCCESS"])
    core.wait_states("80002", ["RUNNING"])
    assert [s for _, s in core.updates("80001")] == ["RUNNING", "SUCCESS"]
    assert job_state(provider, second) is Status.RUNNING


def test_core_refusing_calls_gets_them_again_in_order(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    core.refuse = True
    create(http, token, runnable(seed_provider_create(), "80003", ["true"]))
    core.wait(lambda: core.refused >= 2, "two refused calls")  # retried, not dropped
    core.refuse = False
    core.wait_states("80003", ["RUNNING", "SUCCESS"])
    assert [s for _, s in core.updates("80003")] == ["RUNNING", "SUCCESS"]


def admin_client(server: ServerThread, certs_dir: Path) -> Client:
    return Client(server=f"localhost:{server.port}",
                  cert=str(certs_dir / "admin-client-cert.pem"),
                  key=str(certs_dir / "admin-client-key.pem"),
                  ca=str(certs_dir / "ca-cert.pem"))  # fmt: skip
