"""Isolation and resource control through the API, as a user sees them: the real server,
the real local runtime (root, cgroups), the SDK and the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobyard.cli.main import cli
from jobyard.client import Client
from jobyard.domain.errors import FailedPrecondition, PermissionDenied
from jobyard.runtime.local.cgroups import JobCgroup, JobCgroupV1, JobCgroupV2, detect_cgroups
from tests.integration.conftest import ServerThread

WAIT_SECONDS = 30.0
MIB = 1024 * 1024


def job_cgroup(job_id: str) -> JobCgroup:
    """The job's cgroup as the test server's runtime names it (default cgroupRoot)."""
    return detect_cgroups(root_name="jobyard").job(job_id)


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def output(client: Client, job_id: str) -> str:
    return b"".join(client.logs(job_id)).decode()


def status_cli(server: ServerThread, certs_dir: Path, *args: str) -> str:
    """`jobyard status ...` in-process against the test server, as the admin."""
    result = CliRunner().invoke(
        cli,
        [
            f"--server=localhost:{server.port}",
            f"--cert={certs_dir / 'admin-client-cert.pem'}",
            f"--key={certs_dir / 'admin-client-key.pem'}",
            f"--ca={certs_dir / 'ca-cert.pem'}",
            "status",
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.stdout


# -- network ------------------------------------------------------------------------------


def test_network_none_gives_an_empty_network_namespace(admin: Client) -> None:
    isolated = admin.submit("cat", ["/proc/net/dev"], network="none")
    shared = admin.submit("cat", ["/proc/net/dev"])

    def interfaces(net_dev: str) -> set[str]:
        return {line.split(":")[0].strip() for line in net_dev.splitlines()[2:]}

    assert admin.wait(isolated.id, timeout=WAIT_SECONDS).status == "COMPLETED"
    assert admin.wait(shared.id, timeout=WAIT_SECONDS).status == "COMPLETED"
    assert interfaces(output(admin, isolated.id)) == {"lo"}
    assert interfaces(output(admin, shared.id)) == interfaces(Path("/proc/net/dev").read_text())
    assert (admin.job(isolated.id).network, admin.job(shared.id).network) == ("none", "host")


# -- usage ---------------------------------------------------------------------------------

BURN = (
    "import time\nb = bytearray(40 << 20)\nb[::4096] = b'x' * len(b[::4096])\n"
    "t = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
)


def test_usage_is_recorded_when_the_job_ends(
    server: ServerThread, certs_dir: Path, admin: Client
) -> None:
    job = admin.submit("python3", ["-c", BURN])
    assert admin.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"

    details = admin.details(job.id)
    assert details.usage is not None
    assert details.usage.cpu_seconds >= 0.35
    assert details.usage.memory_peak_bytes >= 40 * MIB
    assert details.usage.memory_current_bytes == 0  # nothing of it runs any more
    assert [u.status for u in details.job.updates] == [
        "QUEUED", "INITIALIZING", "RUNNING", "COMPLETED"
    ]  # fmt: skip
    assert not job_cgroup(job.id).exists()  # read before the cgroup went away

    text = status_cli(server, certs_dir, job.id)
    assert f"CPUSeconds: {details.usage.cpu_seconds:.2f}\n" in text
    assert "PeakMemory: " in text and "History:\n" in text
    assert json.loads(status_cli(server, certs_dir, "--json", job.id))["usage"]["cpuSeconds"] > 0


def test_cpu_limit_of_50_percent_gets_about_half_a_core(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "while :; do :; done"], max_cpu=50)
    eventually(lambda: admin.job(job.id).status == "RUNNING", "the job to run")
    time.sleep(0.3)  # past the start-up
    first, started = admin.details(job.id).usage, time.monotonic()
    time.sleep(2.0)
    last, ended = admin.details(job.id).usage, time.monotonic()
    admin.stop(job.id)

    assert first is not None and last is not None
    share = (last.cpu_seconds - first.cpu_seconds) / (ended - started)
    assert 0.3 <= share <= 0.7, f"got {share:.2f} of a core"


# -- OOM -----------------------------------------------------------------------------------


def test_a_job_over_its_memory_is_failed_as_oom_killed_everywhere(
    server: ServerThread, certs_dir: Path, admin: Client
) -> None:
    hog = "b = bytearray(200 * 1024 * 1024); print('survived')"
    job = admin.submit("python3", ["-c", hog], max_memory=50)

    done = admin.wait(job.id, timeout=WAIT_SECONDS)
    assert (done.status, done.termination_reason) == ("FAILED", "OOM_KILLED")
    assert "survived" not in output(admin, job.id)
    text = status_cli(server, certs_dir, job.id)
    assert "Status: FAILED\n" in text and "Reason: OOM_KILLED\n" in text
    as_json = json.loads(status_cli(server, certs_dir, "--json", job.id))
    assert (as_json["status"], as_json["terminationReason"]) == ("FAILED", "OOM_KILLED")


# -- pids ----------------------------------------------------------------------------------


def pids_files(cgroup: JobCgroup) -> tuple[Path, Path]:
    """``pids.current`` and ``pids.events`` of the job's pids controller."""
    if isinstance(cgroup, JobCgroupV1):
        path = cgroup.dirs["pids"]
    else:
        assert isinstance(cgroup, JobCgroupV2)
        path = cgroup.path
    return path / "pids.current", path / "pids.events"


def test_a_fork_bomb_is_contained_by_the_pids_limit(admin: Client) -> None:
    # PID 1 becomes `sleep` and never reaps: the bomb's processes pile up against the limit.
    bomb = "bomb() { bomb | bomb & }; bomb; exec sleep 100"
    job = admin.submit("sh", ["-c", bomb], max_pids=50)
    current, events = pids_files(job_cgroup(job.id))
    peak, started = 0, time.monotonic()
    answered: list[float] = []
    while time.monotonic() - started < 2.0:
        try:
            peak = max(peak, int(current.read_text()))
        except FileNotFoundError:
            break  # it ended
        if len(answered) < 5:
            began = time.monotonic()
            admin.job(job.id)
            answered.append(time.monotonic() - began)
        time.sleep(0.01)
    refused_forks = int(events.read_text().split()[1])
    stopped = admin.stop(job.id)

    assert 40 <= peak <= 50  # it really tried, and never got past the limit
    assert refused_forks > 0
    assert max(answered) < 2.0  # the server kept answering
    assert stopped.status == "STOPPED"
    eventually(lambda: not job_cgroup(job.id).exists(), "the cgroup to be removed")


# -- stop ----------------------------------------------------------------------------------


def sessions(pids: list[int]) -> set[int]:
    found = set()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a short-lived `sleep`
            found.add(os.getsid(pid))
    return found


def test_stop_ends_double_forked_setsid_processes(admin: Client) -> None:
    escapee = "trap '' TERM HUP; while :; do sleep 0.05; done"
    main = f'( setsid sh -c "{escapee}" & ); ( setsid sh -c "{escapee}" & ); echo ready; sleep 100'
    job = admin.submit("sh", ["-c", main])
    cgroup = job_cgroup(job.id)
    eventually(lambda: output(admin, job.id) == "ready\n", "the job to start")
    # The job's session and two of their own: they really left it.
    eventually(lambda: len(sessions(cgroup.pids())) >= 3, "the escapees")
    pids = cgroup.pids()

    stopped = admin.stop(job.id)
    assert stopped.status == "STOPPED"
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), "every process")
    eventually(lambda: not cgroup.exists(), "the cgroup to be removed")


# -- suspend and resume ----------------------------------------------------------------------

COUNTER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done"


def counted(client: Client, job_id: str) -> list[int]:
    return [int(line) for line in output(client, job_id).split()]


def test_suspend_stops_progress_and_resume_continues_where_it_was(admin: Client) -> None:
    job = admin.submit("sh", ["-c", COUNTER])
    eventually(lambda: len(counted(admin, job.id)) > 5, "the counter to count")

    suspended = admin.suspend(job.id)
    assert suspended.job.status == "SUSPENDED"
    assert job_cgroup(job.id).frozen()
    frozen_at = counted(admin, job.id)
    time.sleep(0.6)
    assert counted(admin, job.id) == frozen_at  # no progress at all
    assert admin.details(job.id).suspended_seconds >= 0.5  # the open period counts

    resumed = admin.resume(job.id)
    assert resumed.job.status == "RUNNING"
    eventually(lambda: len(counted(admin, job.id)) > len(frozen_at) + 5, "the counter")
    numbers = counted(admin, job.id)
    assert numbers == list(range(1, len(numbers) + 1))  # continued, nothing restarted
    assert resumed.suspended_seconds >= 0.6
    statuses = [u.status for u in resumed.job.updates]
    assert statuses[-2:] == ["SUSPENDED", "RUNNING"]


def test_a_suspended_job_can_be_stopped(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "trap 'exit 9' TERM; " + COUNTER])
    eventually(lambda: len(counted(admin, job.id)) > 2, "the counter to count")
    admin.suspend(job.id)
    time.sleep(0.3)

    began = time.monotonic()
    stopped = admin.stop(job.id)
    assert stopped.status == "STOPPED"
    assert time.monotonic() - began < 5
    details = admin.details(job.id)
    assert details.suspended_seconds >= 0.25  # the period closed when the job ended
    assert not job_cgroup(job.id).exists()


def test_suspend_and_resume_are_for_admins_and_running_jobs(admin: Client, viewer: Client) -> None:
    job = admin.submit("sleep", ["100"])
    eventually(lambda: admin.job(job.id).status == "RUNNING", "the job to run")
    with pytest.raises(PermissionDenied, match=r"role viewer is not allowed .* suspend_job"):
        viewer.suspend(job.id)
    with pytest.raises(FailedPrecondition, match=f"job is not suspended: {job.id} .*RUNNING"):
        admin.resume(job.id)
    admin.suspend(job.id)
    with pytest.raises(PermissionDenied, match="resume_job"):
        viewer.resume(job.id)
    assert viewer.details(job.id).job.status == "SUSPENDED"  # viewers may look
    admin.stop(job.id)
    with pytest.raises(
        FailedPrecondition, match=f"job is not running: {job.id} \\(current status: STOPPED\\)"
    ):
        admin.suspend(job.id)


def test_details_of_a_running_job_are_live(admin: Client) -> None:
    job = admin.submit("python3", ["-c", BURN + "\nprint('done', flush=True)\ntime.sleep(100)"])
    eventually(lambda: output(admin, job.id) == "done\n", "the burn")
    details = admin.details(job.id)
    admin.stop(job.id)

    assert details.usage is not None
    assert details.usage.cpu_seconds >= 0.35
    assert details.usage.memory_current_bytes > 0
    assert details.output_bytes == len("done\n")


def test_concurrent_suspends_leave_one_winner(admin: Client) -> None:
    job = admin.submit("sleep", ["100"])
    eventually(lambda: admin.job(job.id).status == "RUNNING", "the job to run")
    errors: list[Exception] = []

    def suspend() -> None:
        try:
            admin.suspend(job.id)
        except FailedPrecondition as exc:
            errors.append(exc)

    threads = [threading.Thread(target=suspend) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 3
    assert admin.job(job.id).status == "SUSPENDED"
    assert job_cgroup(job.id).frozen()
    admin.stop(job.id)
