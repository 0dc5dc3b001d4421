"""Replicas through the public API on a real server: ranks 0..N-1 of one job, each with
its UCloud-style files and variables, its own output, one aggregated status."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner, Result

from jobyard.api.gen import joblet_pb2, joblet_pb2_grpc
from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.api.gen import jobyard_v1_pb2_grpc as v1_grpc
from jobyard.cli.main import cli as main_cli
from jobyard.client import Client
from jobyard.domain.access import SYSTEM
from jobyard.domain.errors import InvalidArgument
from jobyard.runtime.base import Handle
from jobyard.runtime.local.cgroups import JobCgroup, detect_cgroups
from jobyard.runtime.local.supervisors import Supervisors
from tests.integration.conftest import ServerThread

WAIT = 30.0

# Each rank prints what it was told, as variables and as files.
REPORT = (
    'echo "env rank=$JOBYARD_RANK nodes=$JOBYARD_NUMBER_OF_NODES job=$JOBYARD_JOB_ID '
    'cores=$JOBYARD_CORES list=$JOBYARD_NODES"; '
    "cd /run/jobyard && for f in rank number_of_nodes job_id cores; do "
    'echo "file.$f=$(cat $f.txt)"; done; '
    'for f in node-*.txt; do echo "file.$f=$(cat $f)"; done; '
    "touch /run/jobyard/rank.txt 2>/dev/null && echo writable || echo read-only"
)


def job_cgroup(job_id: str) -> JobCgroup:
    return detect_cgroups(root_name="jobyard").job(job_id)


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rank_log(client: Client, job_id: str, rank: int) -> str:
    return b"".join(client.logs(job_id, rank=rank)).decode()


def reported(text: str) -> dict[str, str]:
    """``key=value`` pairs of the REPORT lines."""
    return dict(re.findall(r"(\S+?)=(\S*)", text))


def supervisors(server: ServerThread, job_id: str) -> Supervisors:
    assert server.running is not None
    return Supervisors.parse(Handle(server.running.engine.job(SYSTEM, job_id).backend_id))


def test_each_rank_finds_its_rank_and_the_job_in_files_and_variables(admin: Client) -> None:
    job = admin.submit("sh", ["-c", REPORT], replicas=3, max_cpu=200)
    done = admin.wait(job.id, timeout=WAIT)
    assert (done.status, done.exit_code, done.replicas) == ("COMPLETED", 0, 3)
    for rank in range(3):
        seen = reported(rank_log(admin, job.id, rank))
        assert seen["rank"] == seen["file.rank"] == str(rank)
        assert seen["nodes"] == seen["file.number_of_nodes"] == "3"
        assert seen["job"] == seen["file.job_id"] == job.id
        # 200 % of a core, shared by 3 ranks: at least 1 each.
        expected_cores = str(max(1, min(2, len(os.sched_getaffinity(0))) // 3))
        assert seen["cores"] == seen["file.cores"] == expected_cores
        assert seen["list"] == "127.0.0.1,127.0.0.1,127.0.0.1"
        nodes = {k: v for k, v in seen.items() if k.startswith("file.node-")}
        assert nodes == {f"file.node-{i}.txt": "127.0.0.1" for i in range(3)}
        assert "read-only" in rank_log(admin, job.id, rank)
    # Rank 0's output is the job's output, as clients that know no ranks read it.
    assert b"".join(admin.logs(job.id)).decode() == rank_log(admin, job.id, 0)
    chunks = admin.read_logs(job.id, rank=2)
    assert "env rank=2 " in b"".join(c.data for c in chunks).decode()
    # The job's output size counts every rank.
    total = sum(len(rank_log(admin, job.id, rank).encode()) for rank in range(3))
    assert admin.details(job.id).output_bytes == total


def test_a_single_replica_job_is_rank_0_of_1(admin: Client) -> None:
    job = admin.submit("sh", ["-c", REPORT])
    assert admin.wait(job.id, timeout=WAIT).status == "COMPLETED"
    seen = reported(rank_log(admin, job.id, 0))
    assert (seen["rank"], seen["file.rank"], seen["nodes"]) == ("0", "0", "1")
    assert (seen["job"], seen["file.node-0.txt"]) == (job.id, "127.0.0.1")


def test_one_failing_rank_fails_the_job_and_stops_the_others(admin: Client) -> None:
    script = 'if [ "$JOBYARD_RANK" = 2 ]; then sleep 0.5; exit 3; fi; echo up; exec sleep 60'
    started = time.monotonic()
    job = admin.submit("sh", ["-c", script], replicas=3)
    done = admin.wait(job.id, timeout=WAIT)
    assert time.monotonic() - started < 20  # the other ranks did not sleep their 60 s
    assert (done.status, done.termination_reason, done.exit_code) == ("FAILED", "EXITED", 3)
    assert done.message == "rank 2 failed: exit code 3"
    assert not job_cgroup(job.id).exists()


def test_stop_ends_every_rank_and_removes_the_cgroup(server: ServerThread, admin: Client) -> None:
    job = admin.submit("sh", ["-c", "sleep 60 & sleep 60"], replicas=3)
    cgroup = job_cgroup(job.id)
    eventually(lambda: len(cgroup.pids()) >= 6, "every rank's processes")
    pids = cgroup.pids()
    shims = [s.pid for s in supervisors(server, job.id).ranks]
    assert len(shims) == 3
    result = admin.stop(job.id)
    assert (result.status, result.exit_code) == ("STOPPED", -1)
    assert admin.job(job.id).termination_reason == "USER_STOP"
    assert not any(Path(f"/proc/{pid}").exists() for pid in [*pids, *shims])
    assert not cgroup.exists()


def test_a_time_limit_stops_every_rank(admin: Client) -> None:
    job = admin.submit("sleep", ["60"], replicas=2, time_limit=1)
    done = admin.wait(job.id, timeout=WAIT)
    assert (done.status, done.termination_reason) == ("STOPPED", "TIME_LIMIT")
    assert not job_cgroup(job.id).exists()


def test_following_a_rank_streams_it_until_the_job_ends(admin: Client) -> None:
    script = 'echo "start $JOBYARD_RANK"; sleep 1; echo "end $JOBYARD_RANK"'
    job = admin.submit("sh", ["-c", script], replicas=2)
    followed = b"".join(admin.logs(job.id, follow=True, rank=1)).decode()
    assert followed == "start 1\nend 1\n"
    chunks = admin.read_logs(job.id, tail=1, rank=1)
    assert b"".join(c.data for c in chunks) == b"end 1\n"


def test_suspend_and_resume_act_on_every_rank(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "sleep 0.5; echo $JOBYARD_RANK"], replicas=2)
    admin.suspend(job.id)
    assert job_cgroup(job.id).frozen()
    time.sleep(1)
    assert rank_log(admin, job.id, 0) == rank_log(admin, job.id, 1) == ""
    admin.resume(job.id)
    assert admin.wait(job.id, timeout=WAIT).status == "COMPLETED"
    assert [rank_log(admin, job.id, r) for r in (0, 1)] == ["0\n", "1\n"]


def test_ranks_of_a_network_none_job_share_one_loopback(admin: Client) -> None:
    job = admin.submit("readlink", ["/proc/self/ns/net"], replicas=3, network="none")
    assert admin.wait(job.id, timeout=WAIT).status == "COMPLETED"
    namespaces = {rank_log(admin, job.id, rank) for rank in range(3)}
    assert len(namespaces) == 1
    assert namespaces != {os.readlink("/proc/self/ns/net") + "\n"}


def test_a_running_multi_rank_job_is_adopted_after_a_restart(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    script = 'echo "up $JOBYARD_RANK"; sleep 2; echo "done $JOBYARD_RANK"'
    job = admin.submit("sh", ["-c", script], replicas=3)
    eventually(lambda: all(rank_log(admin, job.id, r) for r in range(3)), "every rank to start")
    server.stop()
    server.start()
    with _client(server, certs_dir) as again:
        done = again.wait(job.id, timeout=WAIT)
        assert (done.status, done.exit_code) == ("COMPLETED", 0)
        logs = [rank_log(again, job.id, rank) for rank in range(3)]
    assert logs == [f"up {r}\ndone {r}\n" for r in range(3)]
    assert not job_cgroup(job.id).exists()


def test_a_rank_the_job_lacks_is_refused(server: ServerThread, admin: Client) -> None:
    job = admin.submit("true", replicas=2)
    admin.wait(job.id, timeout=WAIT)
    for rank in (2, -1):
        with pytest.raises(InvalidArgument, match=rf"invalid rank {rank}: the job has 2"):
            b"".join(admin.logs(job.id, rank=rank))
        with pytest.raises(InvalidArgument, match=rf"invalid rank {rank}"):
            list(admin.read_logs(job.id, rank=rank))
    channel = admin._channel
    request = joblet_pb2.GetJobLogsReq(id=job.id, follow=False, rank=5)
    with pytest.raises(grpc.RpcError) as raised:
        list(joblet_pb2_grpc.JobletServiceStub(channel).GetJobLogs(request))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    read = v1.ReadLogsRequest(id=job.id, rank=2)
    with pytest.raises(grpc.RpcError) as raised:
        list(v1_grpc.JobyardServiceStub(channel).ReadLogs(read))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("replicas", [0, -1, 257])
def test_replicas_out_of_range_are_refused_and_create_nothing(admin: Client, replicas: int) -> None:
    before = admin.jobs()
    with pytest.raises(InvalidArgument, match=f"invalid replicas {replicas}"):
        admin.submit("true", replicas=replicas)
    assert admin.jobs() == before


@pytest.mark.parametrize("replicas", [-1, 257])
def test_the_server_refuses_replicas_out_of_range(admin: Client, replicas: int) -> None:
    stub = joblet_pb2_grpc.JobletServiceStub(admin._channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.RunJob(joblet_pb2.RunJobReq(command="true", replicas=replicas))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "must be between 1 and 256" in (raised.value.details() or "")
    assert admin.jobs() == []


def _client(server: ServerThread, certs_dir: Path) -> Client:
    return Client(
        server=f"localhost:{server.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )


def cli(server: ServerThread, certs_dir: Path, *args: str) -> Result:
    """The CLI in-process against the test server, as the admin."""
    return CliRunner().invoke(
        main_cli,
        [
            f"--server=localhost:{server.port}",
            f"--cert={certs_dir / 'admin-client-cert.pem'}",
            f"--key={certs_dir / 'admin-client-key.pem'}",
            f"--ca={certs_dir / 'ca-cert.pem'}",
            *args,
        ],
    )


def test_the_cli_runs_replicas_and_prints_one_ranks_log(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    ran = cli(server, certs_dir, "run", "--replicas", "3", "sh", "-c", "echo rank $JOBYARD_RANK")
    assert ran.exit_code == 0, ran.output
    assert "Replicas: 3 (ranks 0-2; log --rank I)" in ran.stdout
    job_id = re.search(r"^ID: (\S+)$", ran.stdout, re.MULTILINE)
    assert job_id is not None
    admin.wait(job_id[1], timeout=WAIT)
    logged = cli(server, certs_dir, "log", "--follow=false", "--rank", "2", job_id[1])
    assert (logged.exit_code, logged.stdout) == (0, "rank 2\n")
    status = cli(server, certs_dir, "status", job_id[1])
    assert "Replicas: 3" in status.stdout
    refused = cli(server, certs_dir, "log", "--follow=false", "--rank", "3", job_id[1])
    assert refused.exit_code == 1
    assert "invalid rank 3: the job has 3 replicas (ranks 0-2)" in refused.stderr
    assert cli(server, certs_dir, "run", "--replicas", "0", "true").exit_code == 2
