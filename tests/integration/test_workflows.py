"""The seed's YAML workflows through joblet.JobService: real server, real jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from tests.integration.conftest import ServerThread

SEED_EXAMPLE = """
jobs:
  setup-data:
    command: "sh"
    args: ["-c", "echo setting up"]
  process-data:
    command: "sh"
    args: ["-c", "echo processing"]
    maxMemory: 128
    requires:
      - setup-data: "COMPLETED"
"""


@pytest.fixture
def stub(server: ServerThread, certs_dir: Path) -> Iterator[pb_grpc.JobServiceStub]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{server.port}", creds) as channel:
        yield pb_grpc.JobServiceStub(channel)


def _run(stub: pb_grpc.JobServiceStub, yaml: str) -> str:
    res = stub.RunWorkflow(pb.RunWorkflowRequest(workflow="t.yaml", yamlContent=yaml), timeout=10)
    assert res.status == "RUNNING"
    return res.workflowUuid


def _wait_done(
    stub: pb_grpc.JobServiceStub, wf: str, timeout: float = 30
) -> pb.GetWorkflowStatusResponse:
    deadline = time.monotonic() + timeout
    while True:
        res = stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=wf), timeout=10)
        if res.workflow.status != "RUNNING":
            return res
        assert time.monotonic() < deadline, f"workflow still running: {res}"
        time.sleep(0.05)


def test_the_seed_example_runs_in_dependency_order(stub: pb_grpc.JobServiceStub) -> None:
    wf = _run(stub, SEED_EXAMPLE)
    res = _wait_done(stub, wf)
    assert res.workflow.status == "COMPLETED"
    assert (res.workflow.totalJobs, res.workflow.completedJobs) == (2, 2)
    jobs = {j.jobName: j for j in res.jobs}
    assert [j.jobName for j in res.jobs] == ["setup-data", "process-data"]
    assert list(jobs["process-data"].dependencies) == ["setup-data"]
    assert all(j.status == "COMPLETED" and j.exitCode == 0 for j in res.jobs)
    setup, process = jobs["setup-data"], jobs["process-data"]
    assert process.startTime.ToDatetime() >= setup.endTime.ToDatetime()
    job = stub.GetJobStatus(pb.GetJobStatusReq(id=process.jobId), timeout=10)
    assert (job.id, job.status, job.maxMemory) == (process.jobId, "COMPLETED", 128)
    info = res.workflow
    assert (info.uuid, info.workflow, info.owner, info.canceledJobs) == (wf, "t.yaml", "admin", 0)
    assert info.yamlContent == SEED_EXAMPLE
    assert info.createdAt.ToDatetime() <= info.startedAt.ToDatetime()
    assert info.startedAt.ToDatetime() <= info.completedAt.ToDatetime()
    listed = stub.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True), timeout=10)
    assert wf in {w.uuid for w in listed.workflows}
    unfinished = stub.ListWorkflows(pb.ListWorkflowsRequest(), timeout=10).workflows
    assert wf not in {w.uuid for w in unfinished}
    same = stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=wf), timeout=10).jobs
    assert [j.jobId for j in same] == [j.jobId for j in res.jobs]


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("jobs: {a: {command: x, requires: [b: COMPLETED]}, "
         "b: {command: y, requires: [a: COMPLETED]}}", "cycle: a -> b -> a"),
        ("jobs: {a: {command: x, requires: [zz: COMPLETED]}}", "unknown job 'zz'"),
        ("jobs: {a: {command: x}, a: {command: y}}", "duplicate name 'a'"),
        ("jobs: {a: {command: x}, b: {command: y, requires: [a: FINISHED]}}", "status must be"),
        ("jobs: {a: {command: x, maxMemory: -1}}", "maxMemory"),
        ("jobs: {a: {command: x, maxMemory: 1000000}}", "exceeds system limits"),
        ("jobs: {a: {args: [x]}}", "command is required"),
        ("jobs: []", "jobs:"),
        ("{{{", "not valid YAML"),
    ],
)  # fmt: skip
def test_an_invalid_workflow_is_refused_whole(
    stub: pb_grpc.JobServiceStub, yaml: str, message: str
) -> None:
    before = len(stub.ListJobs(pb.EmptyRequest(), timeout=10).jobs)
    with pytest.raises(grpc.RpcError) as exc:
        _run(stub, yaml)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (exc.value.details() or "")
    assert len(stub.ListJobs(pb.EmptyRequest(), timeout=10).jobs) == before


def test_a_requirement_that_cannot_hold_stops_its_dependents(stub: pb_grpc.JobServiceStub) -> None:
    wf = _run(stub, """
jobs:
  build: {command: sh, args: ["-c", "exit 3"]}
  test: {command: "true", requires: [build: COMPLETED]}
  deploy: {command: "true", requires: [test: COMPLETED]}
  report: {command: "true", requires: [build: FAILED]}
""")  # fmt: skip
    res = _wait_done(stub, wf)
    jobs = {j.jobName: j for j in res.jobs}
    assert res.workflow.status == "FAILED"
    assert (jobs["build"].status, jobs["build"].exitCode) == ("FAILED", 3)
    for name in ("test", "deploy"):
        assert (jobs[name].status, jobs[name].terminationReason) == ("STOPPED", "DEPENDENCY_FAILED")
        assert jobs[name].jobId == "0"
    assert jobs["report"].status == "COMPLETED"
    counts = (res.workflow.completedJobs, res.workflow.failedJobs, res.workflow.canceledJobs)
    assert counts == (1, 1, 2)


def test_jobs_not_started_show_id_zero(stub: pb_grpc.JobServiceStub) -> None:
    wf = _run(stub, """
jobs:
  first: {command: sleep, args: ["0.5"]}
  second: {command: "true", requires: [first: COMPLETED]}
""")  # fmt: skip
    res = stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=wf), timeout=10)
    second = next(j for j in res.jobs if j.jobName == "second")
    assert (second.jobId, second.status) == ("0", "PENDING")
    assert _wait_done(stub, wf).workflow.status == "COMPLETED"


def test_a_half_done_workflow_continues_after_a_restart(
    server: ServerThread, stub: pb_grpc.JobServiceStub, certs_dir: Path
) -> None:
    wf = _run(stub, """
jobs:
  slow: {command: sleep, args: ["1"]}
  after: {command: "true", requires: [slow: COMPLETED]}
""")  # fmt: skip
    server.stop()
    server.start()
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{server.port}", creds) as channel:
        res = _wait_done(pb_grpc.JobServiceStub(channel), wf)
    assert res.workflow.status == "COMPLETED"
    assert [j.status for j in res.jobs] == ["COMPLETED", "COMPLETED"]


def test_unknown_workflow_is_not_found(stub: pb_grpc.JobServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetWorkflowStatus(
            pb.GetWorkflowStatusRequest(workflowUuid="00000000-0000-4000-8000-000000000000"),
            timeout=10,
        )
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("attach", "missing"),
    [("volumes: [scratch]", "volume not found: scratch"),
     ("runtime: python-3.11-ml", "runtime not found: python-3.11-ml")],
)  # fmt: skip
def test_a_workflow_naming_what_does_not_exist_is_refused_whole(
    stub: pb_grpc.JobServiceStub, attach: str, missing: str
) -> None:
    before = len(stub.ListJobs(pb.EmptyRequest(), timeout=10).jobs)
    with pytest.raises(grpc.RpcError) as exc:
        _run(
            stub, f"jobs:\n  first: {{command: 'true'}}\n  second: {{command: 'true', {attach}}}\n"
        )
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert exc.value.details() == f"invalid workflow: job 'second': {missing}"
    assert len(stub.ListJobs(pb.EmptyRequest(), timeout=10).jobs) == before
    listed = stub.ListWorkflows(pb.ListWorkflowsRequest(includeCompleted=True), timeout=10)
    assert list(listed.workflows) == []
