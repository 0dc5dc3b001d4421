"""The slurm backend through the public API, against the real cluster of this machine.

Each job really goes through Slurm: sbatch, its queue, an allocation, the launcher and a
step per rank, isolation inside it, the state files the server watches.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from jobyard.client import Client
from tests.integration.conftest import ServerThread
from tests.integration.slurm import WAIT_SECONDS, sadmin, scontrol_job, slurm_server, until

pytestmark = pytest.mark.slurm
__all__ = ["sadmin", "slurm_server"]  # fixtures


def slurm_id(server: ServerThread, job_id: str) -> str:
    assert server.running is not None
    backend_id = server.running.store.get(job_id).backend_id
    assert backend_id.isdigit(), backend_id
    return backend_id


def test_a_job_goes_through_the_slurm_queue_and_completes_isolated(
    slurm_server: ServerThread, sadmin: Client
) -> None:
    script = "echo pid=$$ uid=$(id -u) node=$(cat /run/jobyard/node-0.txt) cwd=$PWD; exit 0"
    job = sadmin.submit("sh", ["-c", script])
    assert (job.status, job.backend) == ("QUEUED", "slurm")
    done = sadmin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.exit_code, done.termination_reason) == ("COMPLETED", 0, "EXITED")
    # PID 1 of its own namespace, a uid of its own (the local backend's policy), the
    # allocation's node, in /work.
    output = b"".join(sadmin.logs(job.id)).decode()
    fields = dict(pair.split("=", 1) for pair in output.split())
    assert (fields["pid"], fields["node"], fields["cwd"]) == ("1", socket.gethostname(), "/work")
    assert 200000 <= int(fields["uid"]) <= 265535
    statuses = [u.status for u in done.updates]
    assert statuses == ["QUEUED", "QUEUED", "RUNNING", "COMPLETED"]
    assert done.updates[1].message.startswith("waiting in the slurm queue (backend id ")
    record = scontrol_job(slurm_id(slurm_server, job.id))
    assert record["JobName"] == f"jobyard-{job.id}"
    assert record["JobState"] == "COMPLETED"  # jobyard's end waits for Slurm's
    assert record["TimeLimit"] == "00:10:00"  # always a --time: the config's default here


def test_a_failing_job_reports_its_real_exit_code(sadmin: Client) -> None:
    job = sadmin.submit("sh", ["-c", "echo failing >&2; exit 3"])
    done = sadmin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.exit_code, done.termination_reason) == ("FAILED", 3, "EXITED")
    assert b"".join(sadmin.logs(job.id)) == b"failing\n"


def test_stop_cancels_the_slurm_job(slurm_server: ServerThread, sadmin: Client) -> None:
    job = sadmin.submit("sleep", ["300"])
    until(lambda: sadmin.job(job.id).status == "RUNNING", "the job to run")
    stopped = sadmin.stop(job.id)
    assert stopped.status == "STOPPED"
    done = sadmin.job(job.id)
    assert (done.status, done.termination_reason, done.exit_code) == ("STOPPED", "USER_STOP", -1)
    sid = slurm_id(slurm_server, job.id)
    until(lambda: scontrol_job(sid)["JobState"] in ("CANCELLED", "COMPLETED", "FAILED"),
          "Slurm to end the job")  # fmt: skip


def test_extend_moves_the_time_limit_in_slurm(slurm_server: ServerThread, sadmin: Client) -> None:
    job = sadmin.submit("sleep", ["300"], time_limit=120)
    until(lambda: sadmin.job(job.id).status == "RUNNING", "the job to run")
    sid = slurm_id(slurm_server, job.id)
    assert scontrol_job(sid)["TimeLimit"] == "00:03:00"  # 2 min + jobyard's 1 min margin
    sadmin.extend(job.id, 60)
    assert scontrol_job(sid)["TimeLimit"] == "00:04:00"
    assert sadmin.job(job.id).time_limit_seconds == 180
    sadmin.stop(job.id)


def test_suspend_and_resume_are_slurms_own(slurm_server: ServerThread, sadmin: Client) -> None:
    job = sadmin.submit("sh", ["-c", "while :; do echo tick; sleep 0.05; done"])
    until(lambda: sadmin.job(job.id).status == "RUNNING", "the job to run")
    sid = slurm_id(slurm_server, job.id)
    assert sadmin.suspend(job.id).job.status == "SUSPENDED"
    assert scontrol_job(sid)["JobState"] == "SUSPENDED"
    assert sadmin.resume(job.id).job.status == "RUNNING"
    assert scontrol_job(sid)["JobState"] == "RUNNING"
    size = slurm_server.running.hub.size(job.id) if slurm_server.running else 0
    until(lambda: slurm_server.running is not None
          and slurm_server.running.hub.size(job.id) > size, "output after the resume")  # fmt: skip
    sadmin.stop(job.id)


def test_a_job_over_its_memory_is_oom_killed(sadmin: Client) -> None:
    hog = "x = bytearray(512 * 1024 * 1024); print('survived')"
    job = sadmin.submit("python3", ["-c", hog], max_memory=64)
    done = sadmin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.termination_reason) == ("FAILED", "OOM_KILLED")
    assert b"survived" not in b"".join(sadmin.logs(job.id))


def test_a_job_is_stopped_at_its_time_limit(sadmin: Client) -> None:
    job = sadmin.submit("sleep", ["300"], time_limit=2)
    done = sadmin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.termination_reason) == ("STOPPED", "TIME_LIMIT")


def test_replicas_run_as_one_step_per_rank_with_node_files(sadmin: Client) -> None:
    script = (
        'echo "rank $JOBYARD_RANK of $(cat /run/jobyard/number_of_nodes.txt)'
        ' on $(cat /run/jobyard/node-$JOBYARD_RANK.txt)"'
    )
    job = sadmin.submit("sh", ["-c", script], replicas=2)
    done = sadmin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.exit_code) == ("COMPLETED", 0)
    host = socket.gethostname()
    for rank in (0, 1):
        output = b"".join(sadmin.logs(job.id, rank=rank)).decode()
        assert output == f"rank {rank} of 2 on {host}\n"


def test_a_failing_rank_fails_the_job_with_its_code(sadmin: Client) -> None:
    script = '[ "$JOBYARD_RANK" = 1 ] && exit 4; sleep 300'
    job = sadmin.submit("sh", ["-c", script], replicas=2)
    done = sadmin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.exit_code) == ("FAILED", 4)
    assert done.message == "rank 1 failed: exit code 4"


def test_logs_are_followed_every_byte_once_in_order(sadmin: Client) -> None:
    script = ("for i in $(seq 1 3000); do echo line $i; done; sleep 1; "
              "for i in $(seq 3001 6000); do echo line $i; done")  # fmt: skip
    job = sadmin.submit("sh", ["-c", script])
    followed = b"".join(sadmin.logs(job.id, follow=True))  # history, then live, to the end
    expected = "".join(f"line {i}\n" for i in range(1, 6001)).encode()
    assert followed == expected
    assert sadmin.job(job.id).status == "COMPLETED"


def test_a_server_with_both_backends_runs_a_local_job_locally(sadmin: Client) -> None:
    job = sadmin.submit("true", backend="local")
    assert job.backend == "local"
    assert sadmin.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"


@pytest.fixture
def full_cluster() -> Iterator[str]:
    """The whole node taken by another user's job, so that the next jobs wait in Slurm."""
    blocker = subprocess.run(["sbatch", "--parsable", "--exclusive", "--time=5",
                              "--output=/dev/null", "--wrap", "sleep 300"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    until(lambda: scontrol_job(blocker)["JobState"] == "RUNNING", "the blocker to run")
    yield blocker
    subprocess.run(["scancel", blocker], check=False)


def test_a_job_pending_in_slurm_is_queued_and_stops_there(
    slurm_server: ServerThread, sadmin: Client, full_cluster: str
) -> None:
    job = sadmin.submit("true")
    sid = slurm_id(slurm_server, job.id)
    until(lambda: scontrol_job(sid)["JobState"] == "PENDING", "Slurm to queue the job")
    assert scontrol_job(sid)["Reason"] in ("Resources", "Priority")
    assert sadmin.job(job.id).status == "QUEUED"  # PENDING -> QUEUED, never assumed RUNNING
    stopped = sadmin.stop(job.id)
    assert stopped.status == "STOPPED"
    done = sadmin.job(job.id)
    assert (done.termination_reason, done.start_time) == ("USER_STOP", "")
    assert [u.status for u in done.updates] == ["QUEUED", "QUEUED", "STOPPING", "STOPPED"]
    until(lambda: scontrol_job(sid)["JobState"] == "CANCELLED", "Slurm to cancel the job")


def test_a_workflow_runs_its_jobs_on_slurm_in_order(sadmin: Client) -> None:
    document = """
jobs:
  first: {command: sh, args: ["-c", "echo one > /work/x"]}
  second: {command: sh, args: ["-c", "echo two"], requires: [first: COMPLETED]}
"""
    status = sadmin.run_workflow(document, "on-slurm")
    until(lambda: sadmin.workflow(status.workflow.id).workflow.status == "COMPLETED",
          "the workflow to complete")  # fmt: skip
    jobs = {j.name: j for j in sadmin.workflow(status.workflow.id).jobs}
    assert [jobs[n].status for n in ("first", "second")] == ["COMPLETED", "COMPLETED"]
    assert sadmin.job(jobs["second"].job_id).backend == "slurm"
    assert b"".join(sadmin.logs(jobs["second"].job_id)) == b"two\n"
