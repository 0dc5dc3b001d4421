"""The SDK without a server: error mapping, Job conversion, settings, and calls on a fake stub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from jobyard import certs
from jobyard.api.gen import joblet_pb2, jobyard_v1_pb2
from jobyard.client import (
    Client,
    ClientSettings,
    ConnectionFailed,
    CredentialsError,
    Job,
    StopResult,
    error_from_rpc,
)
from jobyard.client import client as client_module
from jobyard.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
        (grpc.StatusCode.INTERNAL, JobyardError),
    ],
)
def test_error_codes_map_to_the_hierarchy_keeping_the_message(
    code: grpc.StatusCode, expected: type[JobyardError]
) -> None:
    exc = error_from_rpc(FakeRpcError(code, "role viewer is not allowed"))

    assert type(exc) is expected
    assert str(exc) == "role viewer is not allowed"


def test_unavailable_is_a_connection_failure_naming_the_server() -> None:
    exc = error_from_rpc(
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection refused"), "localhost:50051"
    )

    assert isinstance(exc, ConnectionFailed)
    assert isinstance(exc, JobyardError)
    assert str(exc) == "cannot reach the jobyard server at localhost:50051: Connection refused"


def test_an_error_without_details_still_says_something() -> None:
    assert str(error_from_rpc(FakeRpcError(grpc.StatusCode.UNKNOWN, ""))) == (
        "request failed: UNKNOWN"
    )


def full_job_proto() -> joblet_pb2.Job:
    return joblet_pb2.Job(
        id="f47ac10b-58cc-4372-a567-0e02b2c3d479",
        name="build",
        command="python3",
        args=["-c", "print(1)"],
        maxCPU=50,
        cpuCores="0-1",
        maxMemory=256,
        maxIOBPS=1000,
        status="FAILED",
        startTime="2024-01-15T10:30:00Z",
        endTime="2024-01-15T10:31:00Z",
        exitCode=3,
        scheduledTime="2024-01-15T10:29:00Z",
        backend="local",
        environment={"MODE": "fast"},
        secret_environment={"TOKEN": "s3cret"},
        owner="alice",
        project="physics",
        terminationReason="EXITED",
        createdTime="2024-01-15T10:29:59Z",
        maxPids=64,
        message="exited with status 3",
    )


def test_job_from_proto_keeps_every_field() -> None:
    job = Job.from_proto(full_job_proto())

    assert job == Job(
        id="f47ac10b-58cc-4372-a567-0e02b2c3d479",
        name="build",
        command="python3",
        args=("-c", "print(1)"),
        status="FAILED",
        exit_code=3,
        start_time="2024-01-15T10:30:00Z",
        end_time="2024-01-15T10:31:00Z",
        created_time="2024-01-15T10:29:59Z",
        scheduled_time="2024-01-15T10:29:00Z",
        max_cpu=50,
        cpu_cores="0-1",
        max_memory=256,
        max_iobps=1000,
        max_pids=64,
        backend="local",
        owner="alice",
        project="physics",
        termination_reason="EXITED",
        message="exited with status 3",
        environment={"MODE": "fast"},
        secret_environment={"TOKEN": "********"},
    )
    assert job.done
    assert job.command_line == "python3 -c print(1)"


def test_secret_values_never_reach_the_job_even_if_the_server_sends_them() -> None:
    job = Job.from_proto(full_job_proto())

    assert "s3cret" not in repr(job)
    assert "s3cret" not in str(job.to_dict())


def test_to_dict_uses_exactly_the_proto_field_names() -> None:
    proto_names = {field.name for field in joblet_pb2.Job.DESCRIPTOR.fields}
    data = Job.from_proto(full_job_proto()).to_dict()

    assert set(data) == proto_names | {"updates"}  # the history, from jobyard.v1 answers
    assert data["maxCPU"] == 50
    assert data["args"] == ["-c", "print(1)"]
    assert data["secret_environment"] == {"TOKEN": "********"}


def test_stop_result_from_proto() -> None:
    res = joblet_pb2.StopJobRes(id="x", status="STOPPED", endTime="t", exitCode=-1)

    result = StopResult.from_proto(res)

    assert result == StopResult(id="x", status="STOPPED", end_time="t", exit_code=-1)
    assert result.to_dict() == {"id": "x", "status": "STOPPED", "endTime": "t", "exitCode": -1}
    with Client("127.0.0.1:1", insecure=True) as c:
        assert c.isdone(result)


@pytest.mark.parametrize(
    ("status", "done"),
    [
        ("COMPLETED", True),
        ("FAILED", True),
        ("STOPPED", True),
        ("RUNNING", False),
        ("QUEUED", False),
        ("STOPPING", False),
        ("SUSPENDED", False),
    ],
)
def test_isdone_only_for_terminal_statuses(status: str, done: bool) -> None:
    with Client("127.0.0.1:1", insecure=True) as c:
        assert c.isdone(Job(id="x", status=status)) is done


ALL_ENV = (
    "JOBYARD_SERVER",
    "JOBLET_SERVER",
    "JOBYARD_CERT_PATH",
    "JOBLET_CERT_PATH",
    "JOBYARD_KEY_PATH",
    "JOBLET_KEY_PATH",
    "JOBYARD_CA_PATH",
    "JOBLET_CA_PATH",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ALL_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_default_to_the_seed_paths(clean_env: pytest.MonkeyPatch) -> None:
    assert ClientSettings.resolve() == ClientSettings(
        server="localhost:50051",
        cert=Path("certs/client-cert.pem"),
        key=Path("certs/client-key.pem"),
        ca=Path("certs/ca-cert.pem"),
    )


def test_settings_honour_the_seed_env_names_read_at_call_time(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("JOBLET_SERVER", "prod.example.com:50051")
    clean_env.setenv("JOBLET_CERT_PATH", "./certs/admin-client-cert.pem")
    clean_env.setenv("JOBLET_KEY_PATH", "./certs/admin-client-key.pem")
    clean_env.setenv("JOBLET_CA_PATH", "/etc/ca.pem")

    settings = ClientSettings.resolve()

    assert settings.server == "prod.example.com:50051"
    assert settings.cert == Path("certs/admin-client-cert.pem")
    assert settings.key == Path("certs/admin-client-key.pem")
    assert settings.ca == Path("/etc/ca.pem")


def test_jobyard_env_wins_over_joblet_env_and_arguments_win_over_both(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("JOBLET_SERVER", "joblet:1")
    clean_env.setenv("JOBYARD_SERVER", "jobyard:2")

    assert ClientSettings.resolve().server == "jobyard:2"
    assert ClientSettings.resolve(server="arg:3").server == "arg:3"


def test_a_missing_certificate_names_the_path_and_the_fix(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.chdir(tmp_path)

    with pytest.raises(CredentialsError) as info:
        Client()

    message = str(info.value)
    assert "certs/ca-cert.pem" in message
    assert "jobyard certs init" in message


def test_a_client_opens_with_real_certificates_without_connecting(tmp_path: Path) -> None:
    certs.init_certs(tmp_path)

    with Client(
        "127.0.0.1:1",
        tmp_path / "client-cert.pem",
        tmp_path / "client-key.pem",
        tmp_path / "ca-cert.pem",
    ) as client:
        assert client.settings.server == "127.0.0.1:1"


# --- calls, against a fake stub --------------------------------------------------------------


class FakeCall:
    """A GetJobLogs response stream: yields chunks, then optionally fails."""

    def __init__(self, payloads: list[bytes], error: grpc.RpcError | None = None) -> None:
        self.payloads, self.error, self.cancelled = payloads, error, False

    def __iter__(self) -> Iterator[joblet_pb2.DataChunk]:
        for payload in self.payloads:
            yield joblet_pb2.DataChunk(payload=payload)
        if self.error is not None:
            raise self.error

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeStub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Any, float | None]] = []
        self.jobs: dict[str, joblet_pb2.Job] = {}
        self.statuses: list[str] = []
        self.calls: list[FakeCall] = []
        self.metadata: list[dict[str, str]] = []  # of each RunJob attempt
        self.run_failures: list[grpc.RpcError] = []  # raised by the next RunJob attempts

    def _record(self, name: str, request: Any, timeout: float | None) -> None:
        self.requests.append((name, request, timeout))

    # jobyard.v1 RunJob and GetJob (the SDK needs every field; the seed's answers are flat).
    def RunJob(
        self, request: joblet_pb2.RunJobReq, timeout: float | None = None, metadata: Any = ()
    ) -> Any:
        self._record("RunJob", request, timeout)
        self.metadata.append(dict(metadata))
        if self.run_failures:
            raise self.run_failures.pop(0)
        job = joblet_pb2.Job(
            id="j1", command=request.command, args=request.args, status="INITIALIZING"
        )
        return jobyard_v1_pb2.JobDetails(job=job)

    def GetJob(self, request: jobyard_v1_pb2.JobRef, timeout: float | None = None) -> Any:
        self._record("GetJob", request, timeout)
        if request.id not in self.jobs:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"job not found: {request.id}")
        status = self.statuses.pop(0) if self.statuses else "COMPLETED"
        return jobyard_v1_pb2.JobDetails(job=joblet_pb2.Job(id=request.id, status=status))

    def ListJobs(self, request: joblet_pb2.EmptyRequest, timeout: float | None = None) -> Any:
        self._record("ListJobs", request, timeout)
        return joblet_pb2.Jobs(jobs=list(self.jobs.values()))

    def StopJob(self, request: joblet_pb2.StopJobReq, timeout: float | None = None) -> Any:
        self._record("StopJob", request, timeout)
        return joblet_pb2.StopJobRes(id=request.id, status="STOPPED", exitCode=-1)

    def GetJobLogs(self, request: joblet_pb2.GetJobLogsReq, timeout: float | None = None) -> Any:
        self._record("GetJobLogs", request, timeout)
        return self.calls.pop(0)


@pytest.fixture
def stub() -> FakeStub:
    return FakeStub()


@pytest.fixture
def client(stub: FakeStub, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setattr(Client, "_v1", property(lambda self: stub))
    with Client("127.0.0.1:1", insecure=True) as c:
        c._stub = stub  # type: ignore[assignment]
        yield c


def test_submit_sends_command_args_limits_and_environment(client: Client, stub: FakeStub) -> None:
    job = client.submit(
        "bash",
        ["-c", "echo hi"],
        name="greet",
        max_cpu=50,
        max_memory=256,
        max_iobps=1000,
        max_pids=64,
        max_disk=200,
        cpu_cores="0",
        env={"A": "1"},
        secret_env={"TOKEN": "s"},
    )

    name, request, timeout = stub.requests[0]
    assert name == "RunJob"
    assert request == joblet_pb2.RunJobReq(
        command="bash",
        args=["-c", "echo hi"],
        name="greet",
        maxCPU=50,
        maxMemory=256,
        maxIOBPS=1000,
        maxPids=64,
        maxDisk=200,
        cpuCores="0",
        environment={"A": "1"},
        secret_environment={"TOKEN": "s"},
        replicas=1,
    )
    assert timeout == client_module.CALL_TIMEOUT_SECONDS
    assert (job.id, job.command, job.args, job.status) == (
        "j1",
        "bash",
        ("-c", "echo hi"),
        "INITIALIZING",
    )


def test_submit_sends_the_backend_it_is_given(client: Client, stub: FakeStub) -> None:
    client.submit("hostname", backend="slurm")
    assert stub.requests[0][1].backend == "slurm"


def test_submit_sends_a_fresh_request_id_each_time(client: Client, stub: FakeStub) -> None:
    client.submit("true")
    client.submit("true")
    keys = [m["idempotency-key"] for m in stub.metadata]
    assert len(set(keys)) == 2 and all(len(k) == 36 for k in keys)


def test_a_submit_whose_answer_was_lost_is_retried_with_the_same_id(
    client: Client, stub: FakeStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobyard.client import base

    monkeypatch.setattr(base, "CREATE_RETRY_PAUSES_SECONDS", (0.0, 0.0))
    stub.run_failures = [
        FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection reset"),
        FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"),
    ]
    job = client.submit("true", request_id="my-retry-1")
    assert job.id == "j1"
    assert [m["idempotency-key"] for m in stub.metadata] == ["my-retry-1"] * 3


def test_a_refused_submit_is_not_retried(
    client: Client, stub: FakeStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobyard.client import base

    monkeypatch.setattr(base, "CREATE_RETRY_PAUSES_SECONDS", (0.0, 0.0))
    stub.run_failures = [FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "invalid name")]
    with pytest.raises(InvalidArgument, match="invalid name"):
        client.submit("true")
    assert len(stub.metadata) == 1


def test_submit_gives_up_after_its_retries(
    client: Client, stub: FakeStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobyard.client import base

    monkeypatch.setattr(base, "CREATE_RETRY_PAUSES_SECONDS", (0.0, 0.0))
    stub.run_failures = [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down")] * 3
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        client.submit("true")
    assert len(stub.metadata) == 3


def test_submit_refuses_fewer_than_one_replica_before_sending(
    client: Client, stub: FakeStub
) -> None:
    # On the wire 0 means "not given" (one replica): the SDK must not let 0 through.
    with pytest.raises(InvalidArgument, match="invalid replicas 0: must be at least 1"):
        client.submit("true", replicas=0)
    assert stub.requests == []


def test_submit_refuses_a_string_as_args(client: Client) -> None:
    with pytest.raises(TypeError):
        client.submit("echo", "hello")


def test_server_errors_surface_as_jobyard_errors(client: Client) -> None:
    with pytest.raises(NotFound, match=r"^job not found: nope$"):
        client.job("nope")


def test_jobs_and_stop(client: Client, stub: FakeStub) -> None:
    stub.jobs = {"a": joblet_pb2.Job(id="a"), "b": joblet_pb2.Job(id="b")}

    assert [job.id for job in client.jobs()] == ["a", "b"]
    assert client.stop("a") == StopResult(id="a", status="STOPPED", end_time="", exit_code=-1)


def test_logs_yields_payload_bytes_and_asks_for_follow(client: Client, stub: FakeStub) -> None:
    call = FakeCall([b"one\n", b"", b"two\n"])
    stub.calls = [call]

    assert list(client.logs("j1", follow=True)) == [b"one\n", b"two\n"]
    assert stub.requests[0][1] == joblet_pb2.GetJobLogsReq(id="j1", follow=True)
    assert stub.requests[0][1].HasField("follow")


def test_logs_cancels_the_stream_when_the_caller_stops_early(
    client: Client, stub: FakeStub
) -> None:
    call = FakeCall([b"a", b"b", b"c"])
    stub.calls = [call]

    chunks = client.logs("j1")
    assert next(chunks) == b"a"
    chunks.close()  # type: ignore[attr-defined]

    assert call.cancelled


def test_logs_maps_a_stream_error(client: Client, stub: FakeStub) -> None:
    stub.calls = [FakeCall([], FakeRpcError(grpc.StatusCode.NOT_FOUND, "job not found: x"))]

    with pytest.raises(NotFound, match="job not found: x"):
        list(client.logs("x"))


def test_logs_opens_the_stream_only_when_iterated(client: Client, stub: FakeStub) -> None:
    stub.calls = [FakeCall([b"x"])]

    chunks = client.logs("j1")
    assert stub.requests == []

    assert list(chunks) == [b"x"]
    assert [name for name, _, _ in stub.requests] == ["GetJobLogs"]
