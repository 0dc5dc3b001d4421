"""jobs.follow over the WebSocket: initialJob, updates and newStatus, every rank's log, the
final response; cancel; refusals; a client that reads nothing is dropped, nobody waits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobyard.client import Client
from jobyard.domain.access import Identity, Role
from jobyard.domain.jobs import JobSpec
from tests.integration.conftest import ServerThread
from tests.integration.http_support import (
    Http,
    StalledClient,
    follow,
    make_token,
    messages_until_response,
)

ADMIN = Identity("admin", Role.ADMIN)


@pytest.fixture
def admin_token(http_server: ServerThread) -> str:
    return make_token(http_server.data_dir, "admin", "admin")


def test_follow_sends_the_job_then_changes_and_output_until_it_ends(
    http: Http, admin_token: str, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sh", ["-c", "echo one; sleep 0.3; echo two >&2; echo three"])
    with http.websocket() as ws:
        follow(ws, "s1", job.id, admin_token)
        messages = messages_until_response(ws)
    assert all(m["streamId"] == "s1" for m in messages)
    first, last = messages[0], messages[-1]
    assert first["type"] == "message" and first["payload"]["initialJob"]["id"] == job.id
    assert last == {"type": "response", "status": 200, "streamId": "s1", "payload": {}}
    payloads = [m["payload"] for m in messages[1:-1]]
    output = "".join(item["stdout"] for p in payloads for item in p["log"])
    assert output == "one\ntwo\nthree\n"
    assert all(item["rank"] == 0 and item["stderr"] is None for p in payloads for item in p["log"])
    states = [u["state"] for p in [first["payload"]["initialJob"]] for u in p["updates"]]
    states += [u["state"] for p in payloads for u in p["updates"]]
    assert states[-1] == "SUCCESS" and states == sorted(set(states), key=states.index)
    assert [p["newStatus"]["state"] for p in payloads if p["newStatus"]][-1] == "SUCCESS"


def test_follow_of_replicas_names_each_rank(
    http: Http, admin_token: str, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sh", ["-c", "echo rank $UCLOUD_RANK"], replicas=2)
    with http.websocket() as ws:
        follow(ws, "r", job.id, admin_token)
        messages = messages_until_response(ws)
    logs = [item for m in messages if m["type"] == "message" for item in m["payload"]["log"]]
    assert {item["rank"] for item in logs} == {0, 1}


def test_cancel_ends_the_stream_and_the_job_keeps_running(
    http: Http, admin_token: str, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"])
    with http.websocket() as ws:
        follow(ws, "c", job.id, admin_token)
        assert json.loads(ws.recv(30))["payload"]["initialJob"]["id"] == job.id
        ws.send(json.dumps({"call": "jobs.follow", "streamId": "c", "payload": {"type": "cancel"}}))
        messages = messages_until_response(ws)
    assert messages[-1] == {"type": "response", "status": 200, "streamId": "c", "payload": {}}
    assert grpc_admin.job(job.id).status not in {"COMPLETED", "FAILED", "STOPPED"}


def test_refused_follows_answer_with_ucloud_errors(
    http: Http, http_server: ServerThread, admin_token: str, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"])
    alice = make_token(http_server.data_dir, "alice")
    with http.websocket() as ws:
        follow(ws, "a", job.id, alice)
        follow(ws, "b", job.id, "jy_nope")
        ws.send("{not json")
        ws.send(json.dumps({"call": "jobs.open", "streamId": "d", "payload": {}, "bearer": ""}))
        ws.send(b"\x00binary")
        answers = []
        for _ in range(5):
            message = json.loads(ws.recv(30))
            answers.append((message["streamId"], message["status"],
                            message["payload"]["errorCode"]))  # fmt: skip
        follow(ws, "e", job.id, alice)  # the socket still serves after all of that
        assert json.loads(ws.recv(30))["streamId"] == "e"
    assert sorted(answers) == [
        ("", 400, "INVALID_ARGUMENT"),
        ("", 400, "INVALID_ARGUMENT"),
        ("a", 404, "NOT_FOUND"),
        ("b", 401, "UNAUTHENTICATED"),
        ("d", 404, "NOT_FOUND"),
    ]


def test_a_client_that_reads_nothing_is_dropped_and_slows_nobody(
    tmp_path: Path, certs_dir: Path
) -> None:
    config = tmp_path / "config.yml"
    # Output without end (bounded by the output limit): whatever the kernel and TLS buffer,
    # they fill, and the server's outbox for the client with them.
    config.write_text("jobyard:\n  logFollowerStallTimeout: 1s\n  maxOutputBytes: 268435456\n")
    thread = ServerThread(tmp_path / "data", certs_dir, http_listen="127.0.0.1:0",
                          config_file=config)  # fmt: skip
    thread.start()
    assert thread.running is not None
    http = Http(thread.running.http_port, certs_dir / "ca-cert.pem")
    token = make_token(thread.data_dir, "admin", "admin")
    try:
        engine = thread.running.engine
        big = thread.call(engine.submit(ADMIN, JobSpec(
            "sh", ("-c", "yes 0123456789012345678901234567890123456789"))))  # fmt: skip
        small = thread.call(engine.submit(ADMIN, JobSpec("echo", ("hello",)))).id
        slow = StalledClient(http.port, http.context)
        slow.send(json.dumps({"call": "jobs.follow", "streamId": "slow",
                              "payload": {"id": big.id}, "bearer": token}))  # fmt: skip
        with http.websocket() as ws:  # meanwhile another client is served in full
            follow(ws, "fast", small, token)
            messages = messages_until_response(ws)
        assert messages[-1]["status"] == 200
        logs = [i["stdout"] for m in messages[1:-1] for i in m["payload"]["log"]]
        assert "".join(logs) == "hello\n"
        assert http.retrieve(token, small)["status"]["state"] == "SUCCESS"
        face = thread.running.http.server.config.app.state.face  # type: ignore[union-attr]
        thread.call(face.slow_clients.wait_for(1), timeout=120)  # dropped while not reading
        code, reason, answers = slow.read_until_closed()
        # The close frame queues behind what the client never read: if it does not read
        # within the close grace, the server ends the connection without one.
        assert (code, reason) in {(1008, "client too slow: messages not read"), (None, "")}
        assert not any(a["type"] == "response" for a in answers)  # the stream did not end
        assert face.slow_clients.count == 1
    finally:
        http.close()
        thread.close()
