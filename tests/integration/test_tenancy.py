"""Tenancy through the public API, tried as an attacker would: real server, real mTLS
certificates (CN = owner, OU = role, O = project), real SQLite and runtime.

A ``user`` reaches only its own jobs and workflows and its project's; anything else answers
NOT_FOUND with the message of an absent job, on every RPC, and is left out of every list and
watch. Certificates that do not name exactly one caller are refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jobyard import certs
from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.client import Client, Job, LogChunk
from jobyard.domain.errors import NotFound, PermissionDenied, Unauthenticated
from tests.integration.conftest import ClientFactory, ServerThread

WAIT_SECONDS = 30
WORKFLOW = """
jobs:
  first:
    command: "true"
  second:
    command: "sleep"
    args: ["30"]
    requires:
      - first: "COMPLETED"
"""

# name -> project; distinct from other tests' clients in the session's certificate dir
USERS = {"ann": "physics", "ben": "physics", "cat": "chemistry", "dan": ""}


@pytest.fixture(scope="module")
def user_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tenancy-certs")
    certs.init_certs(path)
    for name, project in USERS.items():
        certs.issue_client(path, name, "user", project=project)
    return path


@pytest.fixture
def users(server: ServerThread, user_certs: Path, client_for: ClientFactory) -> dict[str, Client]:
    # The server trusts this module's CA: restart it on these certificates.
    server.stop()
    server.certs_dir = user_certs
    server.start()
    made = {name: client_for(name, certs=user_certs) for name in USERS}
    made["admin"] = client_for("admin", certs=user_certs)
    made["viewer"] = client_for("viewer", certs=user_certs)
    return made


def _job_service(server: ServerThread, certs_dir: Path, name: str) -> pb_grpc.JobServiceStub:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / f"{name}-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / f"{name}-client-cert.pem").read_bytes(),
    )
    return pb_grpc.JobServiceStub(grpc.secure_channel(f"localhost:{server.port}", creds))


def _every_job_rpc(client: Client, ref: str) -> dict[str, Callable[[], Any]]:
    """Each RPC that takes a job id, as a call a user could make."""
    return {
        "status": lambda: client.job(ref),
        "details": lambda: client.details(ref),
        "logs": lambda: b"".join(client.logs(ref)),
        "read_logs": lambda: list(client.read_logs(ref)),
        "tail": lambda: list(client.read_logs(ref, tail=5)),
        "files": lambda: client.files(ref),
        "download": lambda: client.download(ref, "out.txt", Path("/dev/null")),
        "watch": lambda: list(client.watch([ref], timeout=WAIT_SECONDS)),
        "stop": lambda: client.stop(ref),
        "extend": lambda: client.extend(ref, 60),
        "suspend": lambda: client.suspend(ref),
        "resume": lambda: client.resume(ref),
        "delete": lambda: client.delete(ref),
    }


def _running(client: Client, command: str, *args: str) -> Job:
    job = client.submit(command, args)
    for event in client.watch([job.id], timeout=WAIT_SECONDS):
        if event.job.status == "RUNNING":
            return event.job
    raise AssertionError(f"job {job.id} never ran")


def _first_line(chunks: Iterator[LogChunk]) -> bytes:
    data = b""
    for chunk in chunks:
        data += chunk.data
        if b"\n" in data:
            break
    return data.partition(b"\n")[0] + b"\n"


def test_another_owners_job_is_not_found_on_every_rpc(
    users: dict[str, Client], server: ServerThread, user_certs: Path
) -> None:
    cat, ann = users["cat"], users["ann"]
    theirs = _running(cat, "sh", "-c", "echo secret > out.txt; echo logged; sleep 30")

    for ref in (theirs.id, theirs.id[:8]):
        for rpc, call in _every_job_rpc(ann, ref).items():
            with pytest.raises(NotFound) as info:
                call()
            assert str(info.value) == f"job not found: {ref}", rpc
    # The seed's second service answers the same.
    stub = _job_service(server, user_certs, "ann")
    for request in (pb.GetJobStatusReq(id=theirs.id), pb.StopJobReq(id=theirs.id)):
        method = stub.GetJobStatus if isinstance(request, pb.GetJobStatusReq) else stub.StopJob
        with pytest.raises(grpc.RpcError) as rpc_error:
            method(request)
        assert rpc_error.value.code() is grpc.StatusCode.NOT_FOUND
        assert rpc_error.value.details() == f"job not found: {theirs.id}"
    with pytest.raises(grpc.RpcError) as rpc_error:
        list(stub.GetJobLogs(pb.GetJobLogsReq(id=theirs.id)))
    assert rpc_error.value.code() is grpc.StatusCode.NOT_FOUND
    # Nothing the attacker tried acted on the job.
    assert cat.job(theirs.id).status == "RUNNING"
    assert cat.stop(theirs.id).status == "STOPPED"


def test_lists_leave_out_other_owners_jobs(users: dict[str, Client]) -> None:
    ann, cat, dan = users["ann"], users["cat"], users["dan"]
    mine = ann.wait(ann.submit("true").id, timeout=WAIT_SECONDS)
    theirs = cat.wait(cat.submit("true").id, timeout=WAIT_SECONDS)
    loner = dan.wait(dan.submit("true").id, timeout=WAIT_SECONDS)

    assert {j.id for j in ann.jobs()} == {mine.id}
    assert {j.id for j in ann.jobs(limit=100)} == {mine.id}  # jobyard.v1 ListJobs, paged
    assert ann.jobs(owner="cat") == []  # filtering by owner does not widen the scope
    assert {j.id for j in dan.jobs()} == {loner.id}  # no project: its own jobs only
    everything = {mine.id, theirs.id, loner.id}
    assert {j.id for j in users["admin"].jobs()} == everything
    assert {j.id for j in users["viewer"].jobs(status=["COMPLETED"])} == everything


def test_project_members_see_and_act_on_each_others_jobs(users: dict[str, Client]) -> None:
    ann, ben, cat = users["ann"], users["ben"], users["cat"]
    job = _running(ben, "sh", "-c", "echo from-ben; sleep 30")
    assert job.owner == "ben" and job.project == "physics"

    assert ann.job(job.id[:8]).id == job.id
    assert job.id in {j.id for j in ann.jobs()}
    assert _first_line(ann.read_logs(job.id, follow=True)) == b"from-ben\n"
    assert ann.stop(job.id).status == "STOPPED"
    assert ben.job(job.id).termination_reason == "USER_STOP"
    with pytest.raises(NotFound):
        cat.job(job.id)


def test_a_watch_of_every_job_carries_only_the_callers(users: dict[str, Client]) -> None:
    ann, cat = users["ann"], users["cat"]
    before = cat.wait(cat.submit("true").id, timeout=WAIT_SECONDS)
    first = ann.wait(ann.submit("true").id, timeout=WAIT_SECONDS)
    seen: list[tuple[str, bool]] = []
    subscribed = threading.Event()
    ended = threading.Event()

    def watch() -> None:
        for event in ann.watch(timeout=WAIT_SECONDS):
            seen.append((event.job.id, event.snapshot))
            subscribed.set()  # the snapshot is read after subscribing: changes reach us
            if not event.snapshot and event.job.done:
                ended.set()  # the first job to end since: cat's, if it leaked
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert subscribed.wait(WAIT_SECONDS)
    theirs = cat.wait(cat.submit("true").id, timeout=WAIT_SECONDS)  # its events come first
    later = ann.wait(ann.submit("true").id, timeout=WAIT_SECONDS)
    assert ended.wait(WAIT_SECONDS)
    watcher.join(WAIT_SECONDS)

    assert seen[0] == (first.id, True)  # the snapshot: ann's job only
    assert {job_id for job_id, _ in seen} == {first.id, later.id}
    assert not {before.id, theirs.id} & {job_id for job_id, _ in seen}


def test_workflows_are_scoped_like_jobs(
    users: dict[str, Client], server: ServerThread, user_certs: Path
) -> None:
    ann, ben, cat = users["ann"], users["ben"], users["cat"]
    status = cat.run_workflow(WORKFLOW, name="theirs")
    wf = status.workflow.id
    ours = ann.run_workflow(WORKFLOW, name="ours")

    for ref in (wf, wf[:8]):
        for call in (ann.workflow, ann.stop_workflow):
            with pytest.raises(NotFound, match=f"workflow not found: {ref}"):
                call(ref)
    stub = _job_service(server, user_certs, "ann")
    with pytest.raises(grpc.RpcError) as rpc_error:
        stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=wf))
    assert rpc_error.value.code() is grpc.StatusCode.NOT_FOUND
    assert [w.id for w in ann.workflows()] == [ours.workflow.id]
    assert {w.id for w in ben.workflows()} == {ours.workflow.id}  # same project
    assert ours.workflow.owner == "ann"
    # Its jobs belong to the workflow's owner and project.
    started = [j for j in ben.workflow(ours.workflow.id).jobs if j.started]
    assert started and all(ben.job(j.job_id).owner == "ann" for j in started)
    assert ben.stop_workflow(ours.workflow.id).workflow.status == "STOPPED"
    assert {w.id for w in users["admin"].workflows()} == {wf, ours.workflow.id}
    cat.stop_workflow(wf)


def test_a_viewer_reads_every_job_but_cannot_run_or_stop(users: dict[str, Client]) -> None:
    viewer, cat = users["viewer"], users["cat"]
    job = _running(cat, "sleep", "30")

    assert viewer.job(job.id).owner == "cat"
    for call, operation in (
        (lambda: viewer.submit("true"), "run_job"),
        (lambda: viewer.stop(job.id), "stop_job"),
        (lambda: viewer.suspend(job.id), "suspend_job"),
        (lambda: viewer.run_workflow(WORKFLOW), "run_workflow"),
    ):
        with pytest.raises(PermissionDenied) as info:
            call()
        assert str(info.value) == f"role viewer is not allowed to perform operation {operation}"
    assert cat.job(job.id).status == "RUNNING"
    cat.stop(job.id)


OU, CN, ORG = NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME


def _forged(dir: Path, name: str, subject: list[tuple[x509.ObjectIdentifier, str]]) -> None:
    """A client pair signed by the server's own CA, with exactly this subject."""
    ca_cert, ca_key = certs.load_ca(dir)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certs._leaf_certificate(
        ca_cert,
        ca_key,
        key,
        x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]),
        server=False,
        sans=None,
    )
    certs._write_pair(dir, *certs.client_files(name), cert, key)


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ([(CN, "mallory"), (OU, "admin"), (OU, "viewer")], "has 2 OUs (admin, viewer)"),
        ([(CN, "mallory"), (OU, "viewer"), (OU, "admin")], "exactly one role is allowed"),
        ([(OU, "admin"), (ORG, "jobyard")], "has no CN"),
        ([(CN, "mallory"), (ORG, "jobyard")], "has no OU"),
        ([(CN, "mallory"), (OU, "root")], "unknown role 'root'"),
        ([(CN, "mallory"), (OU, "ucloud")], "role ucloud is not accepted"),
    ],
)
def test_certificates_that_do_not_name_one_caller_are_refused(
    server: ServerThread,
    certs_dir: Path,
    client_for: ClientFactory,
    subject: list[tuple[x509.ObjectIdentifier, str]],
    why: str,
) -> None:
    _forged(certs_dir, "forged", subject)
    forged = client_for("forged")
    admin = client_for("admin")
    job = admin.submit("true")

    for call in (lambda: forged.job(job.id), forged.jobs, lambda: forged.submit("true")):
        with pytest.raises(Unauthenticated) as info:
            call()
        assert why in str(info.value)
    assert {j.id for j in admin.jobs()} == {job.id}  # nothing was submitted
