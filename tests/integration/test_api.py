"""The seed's job service through the public gRPC API: real server, mTLS, SQLite, runtime."""

from __future__ import annotations

import re
import socket
import ssl
import time
import uuid
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.certs import init_certs
from jobyard.client import Client
from jobyard.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.integration.conftest import ClientFactory, ServerThread

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_run_returns_the_full_job_and_it_completes(admin: Client) -> None:
    job = admin.submit("echo", ["hello", "world"], max_cpu=50, max_memory=256)
    assert uuid.UUID(job.id).version == 4
    assert (job.command, list(job.args)) == ("echo", ["hello", "world"])
    assert (job.max_cpu, job.max_memory, job.max_iobps) == (50, 256, 0)
    assert job.status in {"QUEUED", "INITIALIZING", "RUNNING", "COMPLETED"}
    done = admin.wait(job.id, timeout=30)
    assert done.status == "COMPLETED"
    assert done.exit_code == 0
    assert done.termination_reason == "EXITED"
    assert RFC3339.match(done.start_time) and RFC3339.match(done.end_time)
    assert _parse(done.start_time) <= _parse(done.end_time)
    assert b"".join(admin.logs(job.id)) == b"hello world\n"


def test_defaults_are_the_seeds(admin: Client) -> None:
    job = admin.submit("true")
    assert (job.max_cpu, job.max_memory, job.max_iobps) == (100, 512, 0)


def test_failed_job_keeps_its_exit_code(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "exit 7"])
    done = admin.wait(job.id, timeout=30)
    assert (done.status, done.exit_code) == ("FAILED", 7)


def test_unknown_command_fails_with_127(admin: Client) -> None:
    job = admin.submit("no-such-command-jobyard")
    done = admin.wait(job.id, timeout=30)
    assert (done.status, done.exit_code) == ("FAILED", 127)


def test_stdout_and_stderr_are_merged_in_write_order(admin: Client) -> None:
    script = "echo one; echo two >&2; echo three; echo four >&2"
    job = admin.submit("sh", ["-c", script])
    admin.wait(job.id, timeout=30)
    assert b"".join(admin.logs(job.id)) == b"one\ntwo\nthree\nfour\n"


def test_follow_gets_history_then_live_output_and_closes_at_the_end(admin: Client) -> None:
    # "last" is written only once the stop arrives, i.e. after the follower has seen "first":
    # it can only reach the follower live (no timing assumption about a loaded machine).
    script = "trap 'echo last; exit 0' TERM; echo first; sleep 60 & wait"
    job = admin.submit("sh", ["-c", script])
    data = b""
    for chunk in admin.logs(job.id, follow=True):
        data += chunk
        if data == b"first\n":
            admin.stop(job.id)
    assert data == b"first\nlast\n"  # the stream closed by itself at the end
    assert admin.job(job.id).status == "STOPPED"


def test_history_only_does_not_wait_for_the_end(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "echo early; sleep 30"])
    deadline = time.monotonic() + 10
    while b"early" not in b"".join(admin.logs(job.id, follow=False)):
        assert time.monotonic() < deadline, "output never appeared"
        time.sleep(0.05)
    admin.stop(job.id)


def test_stop_ends_a_running_job_as_stopped(admin: Client) -> None:
    job = admin.submit("sleep", ["100"])
    _wait_status(admin, job.id, "RUNNING")
    started = time.monotonic()
    result = admin.stop(job.id)
    assert time.monotonic() - started < 1.5
    assert (result.status, result.exit_code) == ("STOPPED", -1)
    assert RFC3339.match(result.end_time)
    final = admin.job(job.id)
    assert (final.status, final.termination_reason) == ("STOPPED", "USER_STOP")


def test_stop_kills_a_job_that_ignores_sigterm_within_a_second(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "trap '' TERM; sleep 100 & wait; sleep 100"])
    _wait_status(admin, job.id, "RUNNING")
    started = time.monotonic()
    assert admin.stop(job.id).status == "STOPPED"
    assert time.monotonic() - started < 1.0


def test_stopping_a_finished_job_is_a_failed_precondition(admin: Client) -> None:
    job = admin.submit("true")
    admin.wait(job.id, timeout=30)
    with pytest.raises(FailedPrecondition) as exc:
        admin.stop(job.id)
    assert str(exc.value) == f"job is not running: {job.id} (current status: COMPLETED)"


def test_unknown_job_is_not_found(admin: Client) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as exc:
        admin.job(missing)
    assert str(exc.value) == f"job not found: {missing}"
    with pytest.raises(NotFound):
        admin.stop(missing)
    with pytest.raises(NotFound):
        list(admin.logs(missing))


def test_a_unique_prefix_works_where_an_id_is_taken(admin: Client) -> None:
    job = admin.submit("true")
    admin.wait(job.id, timeout=30)
    assert admin.job(job.id[:8]).id == job.id


@pytest.mark.parametrize(
    ("command", "args", "limits", "message"),
    [
        ("", [], {}, "command is required"),
        ("   ", [], {}, "command is required"),
        ("echo", ["a\x00b"], {}, "NUL"),
        ("ec\x00ho", [], {}, "NUL"),
        ("echo", ["x" * 300_000], {}, "exceeds"),
        ("echo", [], {"max_cpu": -1}, "maxCPU"),
        ("echo", [], {"max_memory": -5}, "maxMemory"),
        ("echo", [], {"max_iobps": -1}, "maxIOBPS"),
        ("echo", [], {"max_memory": 2_000_000_000}, "maxMemory"),
        ("echo", [], {"max_cpu": 100_000}, "maxCPU"),
        ("echo", [], {"cpu_cores": "0-999"}, "cpuCores"),
    ],
)
def test_bad_input_is_refused_and_creates_no_job(
    admin: Client, command: str, args: list[str], limits: dict[str, object], message: str
) -> None:
    before = len(admin.jobs())
    with pytest.raises(InvalidArgument) as exc:
        admin.submit(command, args, **limits)  # type: ignore[arg-type]
    assert message in str(exc.value)
    assert len(admin.jobs()) == before


def test_viewer_reads_but_cannot_run_or_stop(admin: Client, viewer: Client) -> None:
    job = admin.submit("echo", ["seen"])
    admin.wait(job.id, timeout=30)
    with pytest.raises(PermissionDenied) as exc:
        viewer.submit("echo", ["nope"])
    assert str(exc.value) == "role viewer is not allowed to perform operation run_job"
    with pytest.raises(PermissionDenied) as exc:
        viewer.stop(job.id)
    assert str(exc.value) == "role viewer is not allowed to perform operation stop_job"
    assert viewer.job(job.id).status == "COMPLETED"
    assert job.id in {j.id for j in viewer.jobs()}
    assert b"".join(viewer.logs(job.id)) == b"seen\n"


def test_the_certificate_cn_owns_the_job(
    admin: Client, client_for: ClientFactory, certs_dir: Path
) -> None:
    from jobyard.certs import issue_client

    issue_client(certs_dir, "alice", "admin")
    alice = client_for("alice")
    assert alice.submit("true").owner == "alice"
    assert admin.submit("true").owner == "admin"


def _raw_stub(port: int, certs: Path, with_client_cert: bool) -> pb_grpc.JobletServiceStub:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca-cert.pem").read_bytes(),
        private_key=(certs / "admin-client-key.pem").read_bytes() if with_client_cert else None,
        certificate_chain=(certs / "admin-client-cert.pem").read_bytes()
        if with_client_cert
        else None,
    )
    return pb_grpc.JobletServiceStub(grpc.secure_channel(f"localhost:{port}", creds))


def test_no_client_certificate_is_refused(server: ServerThread, certs_dir: Path) -> None:
    stub = _raw_stub(server.port, certs_dir, with_client_cert=False)
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListJobs(pb.EmptyRequest(), timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_is_refused(
    server: ServerThread, tmp_path: Path, certs_dir: Path
) -> None:
    other = tmp_path / "other-ca"
    init_certs(other)
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(other / "admin-client-key.pem").read_bytes(),
        certificate_chain=(other / "admin-client-cert.pem").read_bytes(),
    )
    stub = pb_grpc.JobletServiceStub(grpc.secure_channel(f"localhost:{server.port}", creds))
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListJobs(pb.EmptyRequest(), timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_both_seed_services_are_served(server: ServerThread, certs_dir: Path) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    channel = grpc.secure_channel(f"localhost:{server.port}", creds)
    res = pb_grpc.JobServiceStub(channel).RunJob(pb.RunJobReq(command="true"), timeout=10)
    got = pb_grpc.JobletServiceStub(channel).GetJobStatus(pb.GetJobStatusReq(id=res.id), timeout=10)
    assert (got.id, got.command) == (res.id, "true")
    health = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="joblet.JobletService"), timeout=5
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {"joblet.JobletService", "joblet.JobService", "grpc.health.v1.Health"} <= names


def test_tls_1_3_is_negotiated(server: ServerThread, certs_dir: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(certs_dir / "ca-cert.pem"))
    ctx.load_cert_chain(
        str(certs_dir / "admin-client-cert.pem"), str(certs_dir / "admin-client-key.pem")
    )
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_jobs_and_output_survive_a_server_restart(server: ServerThread, certs_dir: Path) -> None:
    def client() -> Client:
        return Client(
            server=f"localhost:{server.port}",
            cert=str(certs_dir / "admin-client-cert.pem"),
            key=str(certs_dir / "admin-client-key.pem"),
            ca=str(certs_dir / "ca-cert.pem"),
        )

    with client() as c:
        job = c.submit("sh", ["-c", "echo persisted"])
        c.wait(job.id, timeout=30)
    server.stop()
    server.start()
    with client() as c:
        again = c.job(job.id)
        assert (again.status, again.exit_code) == ("COMPLETED", 0)
        assert b"".join(c.logs(job.id)) == b"persisted\n"


def _wait_status(client: Client, job_id: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while client.job(job_id).status != status:
        assert time.monotonic() < deadline, f"job never reached {status}"
        time.sleep(0.02)
