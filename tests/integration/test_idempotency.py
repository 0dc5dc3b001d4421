"""Idempotent submission through the real server: a retry never creates a second job."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.certs import issue_client
from jobyard.client import Client
from jobyard.domain.errors import AlreadyExists
from tests.integration.conftest import ClientFactory, ServerThread

WAIT = 30.0


def fan_out(count: int) -> str:
    """A root job that waits, and ``count`` jobs that require it (none of them starts)."""
    deps = "".join(f"  j{i}: {{command: 'true', requires: [root]}}\n" for i in range(count))
    return "jobs:\n  root: {command: sleep, args: ['60']}\n" + deps


def _channel(server: ServerThread, certs_dir: Path) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    return grpc.secure_channel(f"localhost:{server.port}", creds)


def test_a_retried_submit_returns_the_first_job_and_runs_it_once(admin: Client) -> None:
    first = admin.submit("sh", ["-c", "echo once"], request_id="retry-run-1")
    again = admin.submit("sh", ["-c", "echo once"], request_id="retry-run-1")

    assert again.id == first.id
    assert [j.id for j in admin.jobs()] == [first.id]
    assert admin.wait(first.id, timeout=WAIT).status == "COMPLETED"
    assert b"".join(admin.logs(first.id)) == b"once\n"


def test_the_same_key_with_another_command_is_already_exists(admin: Client) -> None:
    first = admin.submit("true", request_id="retry-run-2")
    with pytest.raises(AlreadyExists, match="already used for a different request"):
        admin.submit("false", request_id="retry-run-2")
    assert [j.id for j in admin.jobs()] == [first.id]


def test_keys_are_per_owner(admin: Client, client_for: ClientFactory, certs_dir: Path) -> None:
    issue_client(certs_dir, "ida", "user", overwrite=True)
    ida = client_for("ida")
    mine = admin.submit("true", request_id="shared-key")
    hers = ida.submit("true", request_id="shared-key")  # another owner: another job
    assert hers.id != mine.id
    assert ida.submit("true", request_id="shared-key").id == hers.id
    assert len(admin.jobs()) == 2


def test_a_workflow_retried_after_a_deadline_runs_once(
    server: ServerThread, certs_dir: Path, admin: Client
) -> None:
    request = pb.RunWorkflowRequest(workflow="big.yaml", yamlContent=fan_out(4000))
    metadata = (("idempotency-key", "big-workflow-1"),)
    with _channel(server, certs_dir) as channel:
        stub = pb_grpc.JobServiceStub(channel)
        # The client gives up before the answer (as the CLI whose 10,000-job workflow timed
        # out); wherever the server was, the retry with the same key gives one workflow.
        with pytest.raises(grpc.RpcError) as exc:
            stub.RunWorkflow(request, timeout=0.001, metadata=metadata)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first = stub.RunWorkflow(request, timeout=WAIT, metadata=metadata)
        again = stub.RunWorkflow(request, timeout=WAIT, metadata=metadata)

    assert again.workflowUuid == first.workflowUuid
    assert [w.id for w in admin.workflows()] == [first.workflowUuid]
    deadline = time.monotonic() + WAIT
    while not admin.workflow(first.workflowUuid).jobs[0].started:  # started in the background
        assert time.monotonic() < deadline, "the root job never started"
        time.sleep(0.05)
    roots = admin.jobs()  # one workflow: one root job running, its dependents waiting on it
    assert [(j.name, j.workflow_id) for j in roots] == [("root", first.workflowUuid)]
