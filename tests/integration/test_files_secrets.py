"""A job's work directory through the API (list with SHA-256, download, refusals), and secret
environment values that reach the job but never any API answer."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.api.gen import jobyard_v1_pb2_grpc as v1_grpc
from jobyard.client import Client
from jobyard.domain.errors import InvalidArgument, NotFound
from tests.integration.conftest import ServerThread

WAIT = 30.0
BIG_BYTES = 5 * 1024 * 1024 + 123  # several chunks, not a multiple of the chunk size

# Writes ordinary files, a big one, and traps pointing out of the work directory.
WRITER = f"""
set -e
echo hello > out.txt
mkdir -p results/deep
printf 'a,b\\n1,2\\n' > results/deep/table.csv
head -c {BIG_BYTES} /dev/urandom > big.bin
ln -s /etc/shadow shadow-link
ln -s /etc etc-link
ln -s out.txt inside-link
mkfifo pipe
pwd > where.txt
"""


@pytest.fixture
def written(admin: Client) -> str:
    job = admin.submit("sh", ["-c", WRITER])
    done = admin.wait(job.id, timeout=WAIT)
    assert done.status == "COMPLETED", b"".join(admin.logs(job.id))
    return job.id


def test_files_lists_regular_files_with_size_and_sha256(
    server: ServerThread, admin: Client, written: str
) -> None:
    work = server.data_dir / "jobs" / written / "work"
    files = {f.path: f for f in admin.files(written[:8])}

    assert sorted(files) == ["big.bin", "out.txt", "results/deep/table.csv", "where.txt"]
    for path, info in files.items():
        data = (work / path).read_bytes()
        assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert info.modified.endswith("Z")
    assert files["big.bin"].size == BIG_BYTES
    # The work directory is the job's working directory.
    assert (work / "where.txt").read_text().strip() == "/work"


def test_download_streams_a_file_byte_for_byte(
    server: ServerThread, admin: Client, written: str, tmp_path: Path
) -> None:
    expected = (server.data_dir / "jobs" / written / "work" / "big.bin").read_bytes()

    size = admin.download(written, "big.bin", tmp_path / "big.bin")

    assert size == BIG_BYTES
    assert (tmp_path / "big.bin").read_bytes() == expected
    out = io.BytesIO()
    admin.download(written, "results/deep/table.csv", out)
    assert out.getvalue() == b"a,b\n1,2\n"


def test_a_viewer_may_list_and_download(viewer: Client, written: str) -> None:
    assert "out.txt" in [f.path for f in viewer.files(written)]
    out = io.BytesIO()
    viewer.download(written, "out.txt", out)
    assert out.getvalue() == b"hello\n"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "must be relative to the job's work directory"),
        ("../../jobyard.db", "must not contain '..'"),
        ("results/../../output.log", "must not contain '..'"),
        ("shadow-link", "symbolic links are not followed"),
        ("etc-link/passwd", "symbolic links are not followed"),
        ("inside-link", "symbolic links are not followed"),
        ("pipe", "not a regular file"),
        ("results", "not a regular file"),
        ("", "give a file path"),
    ],
)
def test_paths_that_escape_or_are_not_files_are_invalid(
    admin: Client, written: str, path: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        admin.download(written, path, io.BytesIO())


def test_missing_files_and_jobs_are_not_found(admin: Client, written: str) -> None:
    with pytest.raises(NotFound, match=r"file not found: nope\.txt"):
        admin.download(written, "nope.txt", io.BytesIO())
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"job not found: {missing}"):
        admin.files(missing)
    with pytest.raises(NotFound, match=f"job not found: {missing}"):
        admin.download(missing, "out.txt", io.BytesIO())


def test_a_queued_job_has_no_files_yet(admin: Client) -> None:
    job = admin.submit("true", schedule=datetime.now(UTC) + timedelta(hours=1))
    assert admin.files(job.id) == []
    admin.stop(job.id)


# -- secrets -------------------------------------------------------------------------------

SECRET = "s3cr3t-" + uuid.uuid4().hex


def test_a_secret_reaches_the_job_but_no_answer(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    # The job proves it got the value without it being in its command: it compares hashes.
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    script = f'[ "$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1)" = {digest} ] && echo match'
    job = admin.submit("sh", ["-c", script], secret_env={"TOKEN": SECRET})
    assert admin.wait(job.id, timeout=WAIT).status == "COMPLETED"
    assert b"".join(admin.logs(job.id)) == b"match\n"

    answers = _every_answer_about(server, certs_dir, job.id)

    assert len(answers) >= 8
    for name, payload in answers:
        assert SECRET.encode() not in payload, f"{name} carried the secret"
    assert admin.job(job.id).secret_environment == {"TOKEN": "********"}


def _every_answer_about(
    server: ServerThread, certs_dir: Path, job_id: str
) -> list[tuple[str, bytes]]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{server.port}", creds) as channel:
        joblet, jobyard = pb_grpc.JobletServiceStub(channel), v1_grpc.JobyardServiceStub(channel)
        run = joblet.RunJob(
            pb.RunJobReq(command="sleep", args=["60"], secret_environment={"T": SECRET})
        )
        ref = v1.JobRef(id=job_id)
        return [
            ("RunJob", run.SerializeToString()),
            ("GetJobStatus", joblet.GetJobStatus(pb.GetJobStatusReq(id=job_id))
                             .SerializeToString()),
            ("ListJobs", joblet.ListJobs(pb.EmptyRequest()).SerializeToString()),
            ("v1.GetJob", jobyard.GetJob(ref).SerializeToString()),
            ("v1.ListJobs", jobyard.ListJobs(v1.ListJobsRequest()).SerializeToString()),
            *[("v1.WatchJobs", e.SerializeToString())
              for e in jobyard.WatchJobs(v1.WatchJobsRequest(ids=[job_id]))],
            ("v1.ListFiles", jobyard.ListFiles(ref).SerializeToString()),
            ("joblet.StopJob", joblet.StopJob(pb.StopJobReq(id=run.id)).SerializeToString()),
        ]  # fmt: skip
