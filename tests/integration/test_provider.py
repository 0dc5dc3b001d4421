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
MAINTENANCE = {"description": "Disk swap", "availability": "MINOR_DISRUPTION",
               "startsAt": 1700000000000, "estimatedEndAt": None}  # fmt: skip


@pytest.fixture
def core(certs_dir: Path) -> Iterator[FakeCore]:
    fake = FakeCore(certs_dir)  # HTTPS: jobyard checks Core's certificate against caFile
    yield fake
    fake.close()


@pytest.fixture
def provider(tmp_path: Path, certs_dir: Path, core: FakeCore) -> Iterator[ServerThread]:
    if root_problem():
        pytest.skip(root_problem() or "")
    config = provider_config(tmp_path, core, accountingIntervalSeconds=0.5,
                             maintenance=MAINTENANCE)  # fmt: skip
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
    works = {"enabled": True, "logs": True, "timeExtension": True, "utilization": True}
    missing = {"vnc": False, "terminal": False, "web": False}
    assert support["native"] == works | missing
    assert not any(support["docker"].values()) and not any(support["virtualMachine"].values())
    assert support["maintenance"] == MAINTENANCE  # as configured (ucloud.maintenance)


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
    create(http, token, runnable(seed["items"][0], "70001", ["true"]))
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


# -- accounting against Core -----------------------------------------------------------------


def multi_node(job: dict[str, Any], replicas: int) -> dict[str, Any]:
    job["specification"]["replicas"] = replicas
    job["status"]["resolvedApplication"]["invocation"]["allowMultiNode"] = True
    return job


def test_running_jobs_are_charged_per_started_unit_with_periods_replicas(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    job = multi_node(runnable(seed_provider_create(), "90001", ["sleep", "600"]), 2)
    (job_id,) = create(http, token, job)
    core.wait(lambda: len(core.taken("90001")) >= 3, "three units charged")
    items = core.charges("90001")
    assert items[0] == {"id": "90001", "chargeId": "90001-units-0-0", "units": 1, "periods": 2,
                        "performedBy": None, "description": None}  # fmt: skip
    taken = core.taken("90001")
    assert taken[:3] == ["90001-units-0-0", "90001-units-1-1", "90001-units-2-2"]
    # Out of credits: Core refuses the next unit, and the job is stopped at once.
    core.poor.add("90001")
    core.wait_states("90001", ["RUNNING", "SUCCESS"])
    assert core.update_items("90001")[-1] == seed_update(2, "90001")  # the seed's, exactly
    assert provider.running is not None
    stopped = provider.running.engine.job(SYSTEM, job_id)
    assert stopped.status is Status.STOPPED and stopped.reason == "NO_CREDITS"


def test_a_charge_whose_answer_was_lost_is_sent_again_as_a_duplicate(
    http: Http, token: str, core: FakeCore
) -> None:
    core.lose_charge_answers = 1  # Core takes the first unit, jobyard never hears so
    create(http, token, runnable(seed_provider_create(), "90002", ["sleep", "600"]))
    core.wait(lambda: len(core.taken("90002")) >= 2, "the unit after the lost answer")
    sent = [item["chargeId"] for item in core.charges("90002")]
    assert sent[:2] == ["90002-units-0-0", "90002-units-0-0"]  # the retry: same charge id
    assert core.taken("90002")[:2] == ["90002-units-0-0", "90002-units-1-1"]  # taken once
    assert [s for _, s in core.updates("90002")] == ["RUNNING"]  # a duplicate stops nothing


# -- Core's other calls ------------------------------------------------------------------------


def test_verify_fails_jobs_it_does_not_know_and_repeats_a_finished_ones_end(
    http: Http, token: str, core: FakeCore
) -> None:
    seed = seed000_bodies("/ucloud/PROVIDERID/jobs/verify")[0]
    assert http.ok("POST", f"{JOBS}/verify", token, json=seed) == {}
    core.wait_states("54112", ["FAILURE"])
    assert core.update_items("54112") == [seed_update(3, "54112")]  # the seed's, exactly
    create(http, token, runnable(seed_provider_create(), "91001", ["true"]))
    core.wait_states("91001", ["RUNNING", "SUCCESS"])
    http.ok("POST", f"{JOBS}/verify", token, json={"items": [{"id": "91001"}]})
    core.wait_states("91001", ["RUNNING", "SUCCESS", "SUCCESS"])


def test_extend_suspend_unsuspend_and_terminate_act_on_cores_job(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    job = runnable(seed_provider_create(), "92001", ["sleep", "600"])
    (job_id,) = create(http, token, job)
    core.wait_states("92001", ["RUNNING"])
    assert provider.running is not None
    engine = provider.running.engine
    before = engine.job(SYSTEM, job_id).expires_at
    assert before is not None
    extend = {"items": [{"job": job, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}}]}
    assert http.ok("POST", f"{JOBS}/extend", token, json=extend) == {"responses": [{}]}
    after = engine.job(SYSTEM, job_id).expires_at
    assert after is not None and (after - before).total_seconds() == 3600
    suspended = http.ok("POST", f"{JOBS}/suspend", token, json={"items": [{"job": job}]})
    assert suspended == {"responses": [{}]}
    core.wait_states("92001", ["RUNNING", "SUSPENDED"])
    http.ok("POST", f"{JOBS}/unsuspend", token, json={"items": [{"job": job}]})
    core.wait_states("92001", ["RUNNING", "SUSPENDED", "RUNNING"])
    terminated = http.ok("POST", f"{JOBS}/terminate", token, json={"items": [job]})
    assert terminated == {"responses": [{}]}
    core.wait_states("92001", ["RUNNING", "SUSPENDED", "RUNNING", "SUCCESS"])
    assert core.update_items("92001")[-1]["update"]["status"] == "The job was cancelled!"
    # Terminating it again is no error: it has ended.
    http.ok("POST", f"{JOBS}/terminate", token, json={"items": [job]})


def test_calls_naming_a_job_jobyard_does_not_know_are_404(http: Http, token: str) -> None:
    stranger = {"id": "99999"}
    longer = {"job": stranger, "requestedTime": {"hours": 1}}
    for path, body in (("terminate", {"items": [stranger]}),
                       ("suspend", {"items": [{"job": stranger}]}),
                       ("extend", {"items": [longer]})):  # fmt: skip
        refused = http.call("POST", f"{JOBS}/{path}", token, json=body)
        assert refused.status_code == 404, refused.text


def test_utilization_init_acl_and_interactive_sessions(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    job = runnable(seed_provider_create(), "93001", ["sleep", "600"])
    create(http, token, job)
    core.wait_states("93001", ["RUNNING"])
    usage = http.ok("POST", f"{JOBS}/retrieveUtilization", token,
                    json={"categoryId": "example-compute"})  # fmt: skip
    assert usage["queueStatus"] == {"running": 1, "pending": 0}
    assert usage["usedCapacity"]["cpu"] == 1.0 and usage["capacity"]["cpu"] >= 1
    principal = {"principal": {"type": "user", "username": "user"}}
    for _ in range(2):  # idempotent
        assert http.ok("POST", f"{JOBS}/init", token, json=principal) == {}
    session = http.call("POST", f"{JOBS}/interactiveSession", token, json={"items": [
        {"job": job, "rank": 0, "sessionType": "SHELL"}]})  # fmt: skip
    assert session.status_code == 400
    assert "not supported by this provider" in session.json()["why"]
    stranger = {"id": "99998"}  # unknown here: acknowledged all the same
    bob = {"entity": {"type": "user", "username": "bob"}, "permissions": ["READ"]}
    acl = {"items": [{"resource": stranger, "added": [bob], "deleted": []}]}
    assert http.ok("POST", f"{JOBS}/updateAcl", token, json=acl) == {"responses": [{}]}


# -- follow -------------------------------------------------------------------------------------


def provider_socket(http: Http) -> Any:
    from websockets.sync.client import connect

    return connect(f"wss://localhost:{http.port}/ucloud/example/websocket", ssl=http.context)


def test_follow_streams_every_ranks_output_until_the_job_ends(
    http: Http, token: str, core: FakeCore
) -> None:
    job = multi_node(runnable(seed_provider_create(), "94001", ["cat", "/etc/ucloud/rank.txt"]),
                     2)  # fmt: skip
    job["status"]["resolvedApplication"]["invocation"]["invocation"].append(
        {"type": "word", "word": "/etc/ucloud/number_of_nodes.txt"})  # fmt: skip
    create(http, token, job)
    with provider_socket(http) as ws:
        ws.send(json.dumps({"call": "jobs.provider.example.follow", "streamId": "s1",
                            "payload": {"type": "init", "job": job}, "bearer": token}))  # fmt: skip
        messages = []
        while True:
            message = json.loads(ws.recv(60))
            messages.append(message)
            if message["type"] == "response":
                break
    assert messages[-1] == {"type": "response", "status": 200, "streamId": "s1", "payload": {}}
    out: dict[int, str] = {}
    sessions = set()
    for message in messages[:-1]:
        payload = message["payload"]
        assert message["streamId"] == "s1" and payload["stderr"] is None
        sessions.add(payload["streamId"])
        out[payload["rank"]] = out.get(payload["rank"], "") + payload["stdout"]
    assert out == {0: "0\n2\n", 1: "1\n2\n"}
    assert len(sessions) == 1


def test_follow_is_for_core_and_ends_on_cancel_stream(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    job = runnable(seed_provider_create(), "94002", ["sh", "-c", "echo hi; sleep 600"])
    create(http, token, job)
    user = make_token(provider.data_dir, "user", "user")
    with provider_socket(http) as ws:
        init = {"call": "jobs.provider.example.follow", "streamId": "s1",
                "payload": {"type": "init", "job": job}, "bearer": user}  # fmt: skip
        ws.send(json.dumps(init))
        refused = json.loads(ws.recv(60))
        assert refused["type"] == "response" and refused["status"] == 403
        ws.send(json.dumps({**init, "streamId": "s2", "bearer": token}))
        first = json.loads(ws.recv(60))
        assert first["payload"]["stdout"] == "hi\n"
        session = first["payload"]["streamId"]
        ws.send(json.dumps({"call": "jobs.provider.example.follow", "streamId": "s3",
                            "payload": {"type": "cancel", "streamId": session},
                            "bearer": token}))  # fmt: skip
        ended = json.loads(ws.recv(60))
        assert ended == {"type": "response", "status": 200, "streamId": "s2", "payload": {}}


def test_update_acl_decides_who_else_sees_the_job_on_the_other_faces(
    provider: ServerThread, http: Http, token: str, core: FakeCore
) -> None:
    job = runnable(seed_provider_create(), "95001", ["sleep", "600"])
    (job_id,) = create(http, token, job)
    owner = make_token(provider.data_dir, "user", "user")  # Core's user is the job's owner
    bob = make_token(provider.data_dir, "bob", "user")
    lab = make_token(provider.data_dir, "carol", "user", project="lab")
    assert http.call("GET", "/api/jobs/retrieve", owner, params={"id": job_id}).status_code == 200

    def sees(who: str) -> bool:
        answer = http.call("GET", "/api/jobs/retrieve", who, params={"id": job_id})
        assert answer.status_code in (200, 404), answer.text
        return answer.status_code == 200

    assert not sees(bob) and not sees(lab)
    user = {"type": "user", "username": "bob"}
    group = {"type": "project_group", "projectId": "lab", "group": "everyone"}
    entries = [{"entity": user, "permissions": ["READ"]},
               {"entity": group, "permissions": ["READ", "EDIT"]}]  # fmt: skip
    added = {"items": [{"resource": job, "deleted": [], "added": entries}]}
    assert http.ok("POST", f"{JOBS}/updateAcl", token, json=added) == {"responses": [{}]}
    assert sees(bob) and sees(lab)
    # READ lets bob see it, not act on it; EDIT lets the lab extend it.
    stop = {"items": [{"id": job_id}]}
    refused = http.call("POST", "/api/jobs/terminate", bob, json=stop)
    assert refused.status_code == 403 and "to see only" in refused.json()["why"]
    longer = {"items": [{"jobId": job_id, "requestedTime": {"hours": 1}}]}
    assert http.call("POST", "/api/jobs/extend", lab, json=longer).status_code == 200
    removed = {"items": [{"resource": job, "added": [], "deleted": [user]}]}
    http.ok("POST", f"{JOBS}/updateAcl", token, json=removed)
    assert not sees(bob) and sees(lab)
    browse = http.ok("GET", "/api/jobs/browse", lab)
    assert [item["id"] for item in browse["items"]] == [job_id]  # lists honour it too
    # One model: the end-user face shows what Core asked for, and whose job it is.
    seen = browse["items"][0]
    assert seen["owner"] == {"createdBy": "user", "project": None}
    assert seen["specification"]["application"] == job["specification"]["application"]
    assert seen["specification"]["parameters"] == job["specification"]["parameters"]
    bad = {"items": [{"resource": job, "added": [{"entity": {"type": "robot"}}], "deleted": []}]}
    assert http.call("POST", f"{JOBS}/updateAcl", token, json=bad).status_code == 400
