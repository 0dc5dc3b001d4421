"""Real Joblet clients' layouts against a real server (shared/reference/joblet-wire.md).

Requests are sent and answers decoded with messages built from hand-made descriptors of
Joblet's releases (tests/joblet_layouts.py), never with jobyard's own stubs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import unknown_fields
from google.protobuf.message import Message

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.domain.access import SYSTEM
from jobyard.engine.resources import Registry
from tests.integration.conftest import ServerThread
from tests.joblet_layouts import ERA

WORKFLOW = """
version: "3.0"
jobs:
  first:
    command: sh
    args: ["-c", "echo one"]
  second:
    command: "true"
    requires:
      - first: COMPLETED
"""


@pytest.fixture
def channel(server: ServerThread, certs_dir: Path) -> Iterator[grpc.Channel]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{server.port}", creds) as ch:
        yield ch


def call(channel: grpc.Channel, method: str, request: Any, answer: str) -> Any:
    """One unary call as a client of that era makes it: its request, its answer's layout."""
    rpc = channel.unary_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=ERA[answer].FromString,
    )
    res = rpc(request, timeout=10)
    clash = _clash(res)
    assert clash is None, f"{answer}: {clash}"
    return res


def _clash(msg: Message) -> str | None:
    """A field the client's layout declares but could not decode (wrong wire type) there.

    Other unknown fields are jobyard additions (or, in the layouts here that list only what
    a test reads, fields it does not look at), which clients skip.
    """
    declared = {f.number for f in msg.DESCRIPTOR.fields}
    unknown = unknown_fields.UnknownFieldSet(msg)
    for i in range(len(unknown)):
        if unknown[i].field_number in declared:
            return f"field {unknown[i].field_number} does not decode as the client's layout"
    for desc, value in msg.ListFields():
        if desc.message_type is not None:
            for item in value if desc.is_repeated else [value]:
                problem = _clash(item)
                if problem:
                    return problem
    return None


def _job_count(channel: grpc.Channel) -> int:
    rpc = channel.unary_unary(
        "/joblet.JobletService/ListJobs",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.Jobs.FromString,
    )
    return len(rpc(pb.EmptyRequest(), timeout=10).jobs)


def test_a_jobletservice_client_decodes_run_and_status_answers(channel: grpc.Channel) -> None:
    request = pb.RunJobReq(command="sh", args=["-c", "exit 4"], maxCPU=50, maxMemory=64)
    run = call(channel, "/joblet.JobletService/RunJob", request, "RunJobRes")
    assert (run.command, list(run.args), run.maxCPU, run.maxMemory) == (
        "sh", ["-c", "exit 4"], 50, 64,
    )  # fmt: skip
    assert len(run.id) == 36 and run.status in {"QUEUED", "INITIALIZING", "RUNNING"}
    deadline = time.monotonic() + 30
    while True:
        status = call(
            channel, "/joblet.JobletService/GetJobStatus", pb.GetJobStatusReq(id=run.id),
            "GetJobStatusRes",
        )  # fmt: skip
        if status.status in {"COMPLETED", "FAILED", "STOPPED"}:
            break
        assert time.monotonic() < deadline, f"job still {status.status}"
        time.sleep(0.05)
    assert (status.id, status.status, status.exitCode, status.maxMemory) == (
        run.id, "FAILED", 4, 64,
    )  # fmt: skip
    assert status.startTime and status.endTime >= status.startTime


@pytest.mark.parametrize("service", ["JobService", "JobletService"])
def test_a_50b8d0a_run_job_request_is_refused_and_nothing_runs(
    channel: grpc.Channel, service: str
) -> None:
    request = ERA["RunJobRequest"](name="greet", command="echo", args=["hi"], maxCpu=50)
    before = _job_count(channel)
    with pytest.raises(grpc.RpcError) as exc:
        call(channel, f"/joblet.{service}/RunJob", request, "RunJobRes")
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not parse as joblet.RunJobReq" in (exc.value.details() or "")
    assert _job_count(channel) == before


def test_unknown_fields_in_a_streaming_request_are_refused(channel: grpc.Channel) -> None:
    # GetJobLogsReq {id=1 string}; field 9 is nobody's.
    raw = pb.GetJobLogsReq(id="x").SerializeToString() + b"\x48\x01"
    rpc = channel.unary_stream(
        "/joblet.JobService/GetJobLogs",
        request_serializer=lambda b: b,
        response_deserializer=pb.DataChunk.FromString,
    )
    with pytest.raises(grpc.RpcError) as exc:
        list(rpc(raw, timeout=10))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "field 9 with wire type VARINT is not part of joblet.GetJobLogsReq" in (
        exc.value.details() or ""
    )


def test_a_50b8d0a_client_runs_and_follows_a_workflow(channel: grpc.Channel) -> None:
    request = ERA["RunWorkflowRequest"](
        workflow="pipeline.yaml", totalJobs=2, jobOrder=["first", "second"], yamlContent=WORKFLOW
    )
    started = call(channel, "/joblet.JobService/RunWorkflow", request, "RunWorkflowResponse")
    assert started.status == "RUNNING" and len(started.workflowUuid) == 36
    ref = ERA["GetWorkflowStatusRequest"](workflowUuid=started.workflowUuid)
    deadline = time.monotonic() + 30
    while True:
        res = call(
            channel, "/joblet.JobService/GetWorkflowStatus", ref, "GetWorkflowStatusResponse"
        )
        if res.workflow.status != "RUNNING":
            break
        assert time.monotonic() < deadline, "workflow still running"
        time.sleep(0.05)
    info = res.workflow
    assert (info.uuid, info.workflow, info.status) == (
        started.workflowUuid, "pipeline.yaml", "COMPLETED",
    )  # fmt: skip
    assert (info.totalJobs, info.completedJobs, info.failedJobs, info.canceledJobs) == (2, 2, 0, 0)
    assert info.yamlContent == WORKFLOW
    assert 0 < info.createdAt.seconds <= info.startedAt.seconds <= info.completedAt.seconds
    assert [(j.jobName, j.status, j.exitCode) for j in res.jobs] == [
        ("first", "COMPLETED", 0), ("second", "COMPLETED", 0),
    ]  # fmt: skip
    assert list(res.jobs[1].dependencies) == ["first"] and len(res.jobs[0].jobUuid) == 36
    assert res.jobs[0].endTime.seconds <= res.jobs[1].startTime.seconds
    every = ERA["ListWorkflowsRequest"](includeCompleted=True)
    listed = call(channel, "/joblet.JobService/ListWorkflows", every, "ListWorkflowsResponse")
    assert [w.uuid for w in listed.workflows] == [started.workflowUuid]
    running = ERA["ListWorkflowsRequest"]()
    listed = call(channel, "/joblet.JobService/ListWorkflows", running, "ListWorkflowsResponse")
    assert list(listed.workflows) == []


def test_a_50b8d0a_client_manages_volumes_and_networks_and_reads_the_host(
    channel: grpc.Channel, server: ServerThread
) -> None:
    made = call(channel, "/joblet.VolumeService/CreateVolume",
                ERA["CreateVolumeReq"](name="era-vol", size="8MB", type="memory"),
                "CreateVolumeRes")  # fmt: skip
    assert (made.name, made.size, made.type, made.path) == (
        "era-vol", "8MB", "memory", "/volumes/era-vol",
    )  # fmt: skip
    listed = call(channel, "/joblet.VolumeService/ListVolumes", ERA["EmptyRequest"](), "Volumes")
    assert [(v.name, v.jobCount) for v in listed.volumes] == [("era-vol", 0)]
    gone = call(channel, "/joblet.VolumeService/RemoveVolume",
                ERA["RemoveVolumeReq"](name="era-vol"), "RemoveVolumeRes")  # fmt: skip
    assert gone.success
    net = call(channel, "/joblet.NetworkService/CreateNetwork",
               ERA["CreateNetworkReq"](name="era-net", cidr="10.78.0.0/28"),
               "CreateNetworkRes")  # fmt: skip
    assert (net.name, net.cidr) == ("era-net", "10.78.0.0/28") and net.bridge
    nets = call(channel, "/joblet.NetworkService/ListNetworks", ERA["EmptyRequest"](), "Networks")
    assert [(n.name, n.cidr, n.bridge) for n in nets.networks] == [
        ("era-net", "10.78.0.0/28", net.bridge)
    ]
    assert server.running is not None
    registry = server.running.engine.attachments
    assert isinstance(registry, Registry)
    server.call(registry.remove_network(SYSTEM, "era-net"))
    status = call(channel, "/joblet.MonitoringService/GetSystemStatus", ERA["EmptyRequest"](),
                  "SystemStatusRes")  # fmt: skip
    assert status.available and status.cpu.cores == status.host.cpuCount == os.cpu_count()
    assert status.memory.totalBytes == status.host.totalMemory > status.memory.usedBytes > 0
    missing = call(channel, "/joblet.RuntimeService/GetRuntimeInfo",
                   ERA["RuntimeInfoReq"](runtime="nope"), "RuntimeInfoRes")  # fmt: skip
    assert missing.found is False
