"""Secret environment values never rest in the data directory in clear.

Real server, real SQLite (with its WAL), real jobs. The data directory is pytest's tmp_path,
outside the jobs' private /tmp; every file in it is searched for the value.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.client import Client
from tests.integration.conftest import ServerThread

WAIT = 30.0


def _secret() -> str:
    return "s3cr3t-" + uuid.uuid4().hex


def _checks(secret: str) -> list[str]:
    """A job that proves it saw ``secret`` (by its hash: the command does not hold it)."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return [
        "-c",
        f'[ "$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1)" = {digest} ] && echo seen',
    ]


def _data_dir_holds(data_dir: Path, secret: str) -> list[str]:
    """The files under ``data_dir`` (database, -wal, -shm, job output, state) holding it."""
    needle = secret.encode()
    return [str(p) for p in sorted(data_dir.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def test_a_secret_is_sealed_while_the_job_runs_and_gone_once_it_ended(
    server: ServerThread, admin: Client
) -> None:
    secret = _secret()
    job = admin.submit(
        "sh", ["-c", _checks(secret)[1] + "; sleep 60"], secret_env={"TOKEN": secret}
    )
    deadline = time.monotonic() + WAIT
    while b"seen" not in b"".join(admin.logs(job.id)):  # it saw the value: it is running
        assert time.monotonic() < deadline, "the job never showed it saw its secret"
        time.sleep(0.05)
    assert _data_dir_holds(server.data_dir, secret) == []

    admin.stop(job.id)
    assert admin.job(job.id).status == "STOPPED"
    assert _data_dir_holds(server.data_dir, secret) == []


def test_a_job_that_ran_with_a_secret_leaves_no_trace_of_it(
    server: ServerThread, admin: Client
) -> None:
    secret = _secret()
    job = admin.submit("sh", _checks(secret), secret_env={"TOKEN": secret})
    assert admin.wait(job.id, timeout=WAIT).status == "COMPLETED"
    assert b"".join(admin.logs(job.id)) == b"seen\n"  # the job saw it
    assert admin.job(job.id).secret_environment == {"TOKEN": "********"}

    assert _data_dir_holds(server.data_dir, secret) == []
    server.stop()  # and once the database is closed, its WAL checkpointed
    assert _data_dir_holds(server.data_dir, secret) == []
    server.start()


def test_a_waiting_job_gets_its_secret_after_a_restart(server: ServerThread, admin: Client) -> None:
    secret = _secret()
    when = datetime.now(UTC) + timedelta(seconds=2)
    job = admin.submit("sh", _checks(secret), secret_env={"TOKEN": secret}, schedule=when)
    assert job.status == "SCHEDULED"
    server.stop()
    assert _data_dir_holds(server.data_dir, secret) == []
    server.start()  # the same key file opens the sealed value

    with Client(
        server=f"localhost:{server.port}",
        cert=admin.settings.cert, key=admin.settings.key, ca=admin.settings.ca,
    ) as again:  # fmt: skip
        done = again.wait(job.id, timeout=WAIT)
        assert (done.status, b"".join(again.logs(job.id))) == ("COMPLETED", b"seen\n")
    assert (server.data_dir / "server.key").stat().st_mode & 0o777 == 0o600
    assert _data_dir_holds(server.data_dir, secret) == []


def test_a_workflow_secret_is_never_shown_nor_left_at_rest(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    secret = _secret()
    check = _checks(secret)[1].replace('"', '\\"')
    document = (
        "jobs:\n"
        f'  uses: {{command: sh, args: ["-c", "{check}"],\n'
        f"         secret_environment: {{TOKEN: {secret}}}}}\n"
        "  after: {command: 'true', requires: [uses]}\n"
    )
    plain = "jobs:\n  only: {command: 'true'}\n"
    with _stub(server, certs_dir) as stub:
        secret_wf = admin.run_workflow(document).workflow.id
        plain_wf = admin.run_workflow(plain).workflow.id
        shown = stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=secret_wf))
        assert shown.workflow.yamlContent == ""  # it carries a secret: never answered
        assert secret.encode() not in shown.SerializeToString()
        assert _data_dir_holds(server.data_dir, secret) == []

        for wf in (secret_wf, plain_wf):
            deadline = time.monotonic() + WAIT
            while not admin.workflow(wf).workflow.done:
                assert time.monotonic() < deadline, f"workflow {wf} did not end"
                time.sleep(0.05)
        ended = stub.GetWorkflowStatus(pb.GetWorkflowStatusRequest(workflowUuid=plain_wf))
        assert ended.workflow.yamlContent == plain

    uses = admin.workflow(secret_wf).jobs[0]
    assert (uses.name, uses.status) == ("uses", "COMPLETED")
    assert b"".join(admin.logs(uses.job_id)) == b"seen\n"  # the job saw the value
    assert _data_dir_holds(server.data_dir, secret) == []


@contextlib.contextmanager
def _stub(server: ServerThread, certs_dir: Path) -> Iterator[pb_grpc.JobServiceStub]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{server.port}", creds) as channel:
        yield pb_grpc.JobServiceStub(channel)
