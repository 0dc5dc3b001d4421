"""A restarted server adopts Slurm jobs by their Slurm id, and learns their true ends."""

from __future__ import annotations

from datetime import datetime

import pytest

from jobyard.client import Client
from jobyard.logs import JobLayout
from tests.integration.conftest import ServerThread
from tests.integration.slurm import WAIT_SECONDS, sadmin, scontrol_job, slurm_server, until
from tests.integration.test_slurm_jobs import slurm_id

pytestmark = pytest.mark.slurm
__all__ = ["sadmin", "slurm_server"]  # fixtures


def test_a_job_that_ended_while_the_server_was_down_gets_its_true_end(
    slurm_server: ServerThread, sadmin: Client
) -> None:
    job = sadmin.submit("sh", ["-c", "sleep 2; exit 7"])
    until(lambda: sadmin.job(job.id).status == "RUNNING", "the job to run")
    sid = slurm_id(slurm_server, job.id)
    slurm_server.stop()
    until(lambda: scontrol_job(sid)["JobState"] == "FAILED", "the job to end in Slurm")
    ended_in_slurm = datetime.fromisoformat(scontrol_job(sid)["EndTime"]).astimezone()
    slurm_server.start()
    client = Client(server=f"localhost:{slurm_server.port}", cert=sadmin.settings.cert,
                    key=sadmin.settings.key, ca=sadmin.settings.ca)  # fmt: skip
    with client:
        done = client.wait(job.id, timeout=WAIT_SECONDS)
        assert (done.status, done.exit_code) == ("FAILED", 7)
        ended = datetime.fromisoformat(done.end_time.replace("Z", "+00:00"))
        assert abs((ended - ended_in_slurm).total_seconds()) < 2  # its end, not the adoption's


def test_a_running_job_is_adopted_and_followed_to_its_end(
    slurm_server: ServerThread, sadmin: Client
) -> None:
    job = sadmin.submit(
        "sh", ["-c", "echo before; while [ ! -e go ]; do sleep 0.05; done; echo after"]
    )
    until(lambda: sadmin.job(job.id).status == "RUNNING", "the job to run")
    slurm_server.stop()
    slurm_server.start()
    client = Client(server=f"localhost:{slurm_server.port}", cert=sadmin.settings.cert,
                    key=sadmin.settings.key, ca=sadmin.settings.ca)  # fmt: skip
    with client:
        assert client.job(job.id).status == "RUNNING"
        (JobLayout(slurm_server.data_dir).workdir(job.id) / "go").touch()
        done = client.wait(job.id, timeout=WAIT_SECONDS)
        assert (done.status, done.exit_code) == ("COMPLETED", 0)
        assert b"".join(client.logs(job.id)) == b"before\nafter\n"
