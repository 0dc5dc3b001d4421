"""Uploads with jobs and workflows: placed in the job's work directory before it starts, with
their modes, owned by the job user; traversal and oversize refused with nothing run."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.cli.main import cli
from jobyard.client import Client
from jobyard.client.workflows import WorkflowStatus
from jobyard.domain.errors import InvalidArgument
from tests.integration.conftest import ServerThread
from tests.integration.test_log_limits import configured

WAIT_SECONDS = 60
# What the job sees in its work directory: mode, owner and type of each entry, then contents.
LISTING = (
    "id -u; find . -mindepth 1 | sort | xargs stat -c '%n %a %u %F'; cat tool.sh data/sub/notes.txt"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    tmp_path = tmp_path / "local"  # the server's data dir is tmp_path / "data"
    tmp_path.mkdir()
    (tmp_path / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")
    (tmp_path / "tool.sh").chmod(0o750)
    sub = tmp_path / "data" / "sub"
    sub.mkdir(parents=True)
    (sub / "notes.txt").write_text("secret-ish notes\n")
    (sub / "notes.txt").chmod(0o600)
    (tmp_path / "data").chmod(0o700)
    return tmp_path


def _finished(client: Client, workflow_id: str) -> WorkflowStatus:
    """The workflow once it has ended (its jobs start in the background)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (status := client.workflow(workflow_id)).workflow.done:
        assert time.monotonic() < deadline, f"workflow still running: {status}"
        time.sleep(0.05)
    return status


def _output(client: Client, job_id: str) -> str:
    job = client.wait(job_id, timeout=WAIT_SECONDS)
    text = b"".join(client.logs(job_id)).decode()
    assert job.status == "COMPLETED", text
    return text


def test_files_and_directories_arrive_with_their_modes(admin: Client, tree: Path) -> None:
    job = admin.submit(
        "sh", ["-c", f"{LISTING}; ./tool.sh"], uploads=[tree / "tool.sh", tree / "data"]
    )
    out = _output(admin, job.id)
    uid = out.split("\n", 1)[0]  # the job's own uid owns them

    assert job.uploads == ("tool.sh", "data")
    assert f"./tool.sh 750 {uid} regular file" in out
    assert f"./data 700 {uid} directory" in out
    assert f"./data/sub 755 {uid} directory" in out
    assert f"./data/sub/notes.txt 600 {uid} regular file" in out
    assert "secret-ish notes" in out and out.rstrip().endswith("tool ran")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../escape.txt", "must stay inside the job's /work"),
        ("a/../../escape.txt", "must stay inside the job's /work"),
        ("/etc/cron.d/x", "must be relative to the job's /work"),
    ],
)
def test_a_path_leaving_the_work_directory_is_refused(
    server: ServerThread, certs_dir: Path, admin: Client, path: str, message: str
) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    request = pb.RunJobReq(command="true", uploads=[pb.FileUpload(path=path, content=b"x")])
    with (
        grpc.secure_channel(f"localhost:{server.port}", creds) as channel,
        pytest.raises(grpc.RpcError) as exc,
    ):
        pb_grpc.JobletServiceStub(channel).RunJob(request, timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (exc.value.details() or "")
    assert admin.jobs() == []
    assert not (server.data_dir / "escape.txt").exists()


def test_uploads_over_the_configured_size_are_refused(tmp_path: Path, certs_dir: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2000)
    with configured(tmp_path / "data", certs_dir, "jobyard:\n  maxUploadBytes: 1000\n") as (
        _,
        client,
    ):
        with pytest.raises(InvalidArgument, match="2000 bytes exceed the server's limit of 1000"):
            client.submit("true", uploads=[big])
        assert client.jobs() == []


def test_uploads_up_to_the_configured_size_arrive(
    admin: Client, tmp_path: Path, certs_dir: Path
) -> None:
    """Uploads of a few MB are within the default maxUploadBytes (64 MiB): gRPC's receive
    limit (grpc.maxRecvMsgSize, 512 KiB) must not refuse them first."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 << 20))
    job = admin.submit("sha256sum", ["payload.bin"], uploads=[payload])
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    assert _output(admin, job.id).split()[0] == digest
    bigger = tmp_path / "bigger.bin"
    bigger.write_bytes(b"x" * (5 << 20))
    with configured(tmp_path / "small", certs_dir, "jobyard:\n  maxUploadBytes: 4194304\n") as (
        _,
        client,
    ):
        with pytest.raises(InvalidArgument, match="exceed the server's limit of 4194304"):
            client.submit("true", uploads=[bigger])
        assert client.jobs() == []


WORKFLOW = """
version: "3.0"
jobs:
  use-files:
    command: sh
    args: ["-c", "cat input.txt lib/helper.txt"]
    uploads:
      files: [input.txt, lib]
  no-files:
    command: sh
    args: ["-c", "ls -A"]
    requires:
      - use-files: COMPLETED
"""


def test_a_workflow_sends_the_files_its_jobs_name(
    admin: Client, tmp_path: Path, server: ServerThread
) -> None:
    tmp_path = tmp_path / "local"
    tmp_path.mkdir()
    (tmp_path / "input.txt").write_text("from input\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper.txt").write_text("from helper\n")
    (tmp_path / "unused.txt").write_text("never sent\n")
    (tmp_path / "wf.yaml").write_text(WORKFLOW)

    status = _finished(admin, admin.run_workflow(tmp_path / "wf.yaml").workflow.id)
    jobs = {j.name: j for j in status.jobs}
    assert _output(admin, jobs["use-files"].job_id) == "from input\nfrom helper\n"
    assert _output(admin, jobs["no-files"].job_id) == ""  # naming no upload, it gets none
    # Kept only until the workflow's jobs have them.
    assert not (server.data_dir / "workflows" / status.workflow.id).exists()


def test_a_workflow_naming_a_file_it_did_not_send_is_refused(admin: Client) -> None:
    with pytest.raises(InvalidArgument) as exc:
        admin.run_workflow(WORKFLOW, base=Path("/nonexistent-dir"))
    assert "cannot upload /nonexistent-dir/input.txt" in str(exc.value)
    stub = pb_grpc.JobServiceStub(admin._channel)
    request = pb.RunWorkflowRequest(
        workflow="wf.yaml",
        yamlContent=WORKFLOW,
        workflowFiles=[pb.FileUpload(path="input.txt", content=b"x")],
    )
    with pytest.raises(grpc.RpcError) as rpc:
        stub.RunWorkflow(request, timeout=10)
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc.value.details() == (
        "invalid workflow: job 'use-files': upload 'lib' was not sent with the workflow"
    )
    assert admin.jobs() == [] and admin.workflows() == []


def test_run_upload_from_the_cli(server: ServerThread, certs_dir: Path, tree: Path) -> None:
    args = [
        f"--server=localhost:{server.port}",
        f"--cert={certs_dir / 'admin-client-cert.pem'}",
        f"--key={certs_dir / 'admin-client-key.pem'}",
        f"--ca={certs_dir / 'ca-cert.pem'}",
        "run", "--json", "--upload", str(tree / "tool.sh"), "./tool.sh",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert '"uploads": [\n    "tool.sh"\n  ]' in result.output
    with Client(
        server=f"localhost:{server.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    ) as client:
        (job,) = client.jobs()
        assert _output(client, job.id) == "tool ran\n"
    assert os.stat(tree / "tool.sh").st_mode & 0o777 == 0o750  # the local file is untouched


def test_run_workflow_from_the_cli_sends_the_named_files(
    server: ServerThread, certs_dir: Path, tmp_path: Path, admin: Client
) -> None:
    local = tmp_path / "local"
    (local / "lib").mkdir(parents=True)
    (local / "input.txt").write_text("from input\n")
    (local / "lib" / "helper.txt").write_text("from helper\n")
    (local / "wf.yaml").write_text(WORKFLOW)
    args = [
        f"--server=localhost:{server.port}",
        f"--cert={certs_dir / 'admin-client-cert.pem'}",
        f"--key={certs_dir / 'admin-client-key.pem'}",
        f"--ca={certs_dir / 'ca-cert.pem'}",
        "run", f"--workflow={local / 'wf.yaml'}",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (workflow,) = admin.workflows()
    first = _finished(admin, workflow.id).jobs[0]
    assert _output(admin, first.job_id) == "from input\nfrom helper\n"
