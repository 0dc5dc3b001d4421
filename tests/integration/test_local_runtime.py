"""The real local runtime: namespaces, cgroups, an unprivileged user, a real supervisor.

Needs root and mounted cgroups (CI machines have both); elsewhere every test here is
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobyard.domain.errors import FailedPrecondition, LaunchError
from jobyard.domain.jobs import JobSpec, Resources
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest
from jobyard.runtime.local import LocalRuntime, LocalRuntimeConfig
from jobyard.runtime.local.cgroups import (
    JobCgroup,
    JobCgroupV1,
    JobCgroupV2,
    Limits,
    block_device_of,
)
from jobyard.runtime.local.runtime import DEFAULT_UID_RANGE
from tests.conftest import root_problem

CGROUP_ROOT = "jobyard-test"
WAIT_SECONDS = 30.0  # a generous bound: only a hang should ever hit it


def _problem() -> str | None:
    problem = root_problem()
    if problem is None:
        try:
            LocalRuntime(LocalRuntimeConfig())
        except Exception as exc:
            return f"the local runtime cannot run here: {exc}"
    return problem


PROBLEM = _problem()
requires_root = pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")


@dataclasses.dataclass
class Job:
    request: LaunchRequest
    handle: Handle

    @property
    def id(self) -> str:
        return self.request.job_id

    @property
    def output(self) -> str:
        return self.request.output_path.read_text()

    @property
    def shim_pid(self) -> int:
        return int(self.handle.backend_id.split(":")[0])

    def file(self, name: str) -> Path:
        return self.request.workdir / name


Launch = Callable[..., Awaitable[Job]]


def new_config() -> LocalRuntimeConfig:
    return LocalRuntimeConfig(cgroup_root=CGROUP_ROOT)


@pytest.fixture
def runtime() -> LocalRuntime:
    return LocalRuntime(new_config())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o711)
    return path


def make_request(
    data_dir: Path,
    command: str,
    *args: str,
    environment: dict[str, str] | None = None,
    secret_environment: dict[str, str] | None = None,
    network: str = "host",
    **resources: Any,
) -> LaunchRequest:
    """A launch request laid out like the engine's (jobs/<id>/{output.log,run,work})."""
    job_id = str(uuid.uuid4())
    job_dir = data_dir / "jobs" / job_id
    job_dir.mkdir(mode=0o711, parents=True)
    spec = JobSpec(
        command,
        args,
        resources=Resources(**resources),
        environment=environment or {},
        secret_environment=secret_environment or {},
        network=network,
    )
    return LaunchRequest(job_id, spec, job_dir / "output.log", job_dir / "run", job_dir / "work")


@pytest.fixture
async def launch(runtime: LocalRuntime, data_dir: Path) -> AsyncIterator[Launch]:
    """Start jobs; whatever a test leaves running is killed and its cgroups removed."""
    started: list[Job] = []

    async def start(command: str, *args: str, **fields: Any) -> Job:
        request = make_request(data_dir, command, *args, **fields)
        job = Job(request, await runtime.start(request))
        started.append(job)
        return job

    yield start
    for job in started:
        await runtime.stop(job.id, job.handle, 0)
        await asyncio.wait_for(runtime.wait(job.id, job.handle), WAIT_SECONDS)
        await runtime.cleanup(job.id, job.handle)


async def wait(runtime: LocalRuntime, job: Job) -> ExitInfo:
    return await asyncio.wait_for(runtime.wait(job.id, job.handle), WAIT_SECONDS)


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def read_int(path: Path) -> int | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(value) if value else None


def cgroup_dirs(runtime: LocalRuntime, job_id: str) -> list[Path]:
    return [procs.parent for procs in runtime.cgroups.job(job_id).procs_files()]


def host_pid_of(cgroup: JobCgroup, ns_pid: int) -> int:
    """The host pid of the job process known as ``ns_pid`` inside the job's namespace."""
    for pid in cgroup.pids():
        status = Path(f"/proc/{pid}/status").read_text()
        nspids = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        if int(nspids.split()[-1]) == ns_pid:
            return pid
    raise AssertionError(f"no process {ns_pid} in the job's cgroup")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# -- running ----------------------------------------------------------------------------


@requires_root
async def test_output_lands_in_the_output_file(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch("sh", "-c", "echo hello; echo oops >&2")
    info = await wait(runtime, job)
    assert info.exit_code == 0
    assert not info.lost
    assert job.output == "hello\noops\n"
    assert (job.request.state_dir / "shim.log").read_text() == ""  # the chain said nothing


@requires_root
async def test_arguments_reach_the_command_verbatim(runtime: LocalRuntime, launch: Launch) -> None:
    args = ("--", "$HOME", "a  b", "'\"; exit 9", "*", "")
    job = await launch("printf", "%s|", *args)
    info = await wait(runtime, job)
    assert info.exit_code == 0
    assert job.output == "".join(f"{arg}|" for arg in args)


@requires_root
async def test_exit_code_is_kept(runtime: LocalRuntime, launch: Launch) -> None:
    before = datetime.now(UTC)
    job = await launch("sh", "-c", "exit 3")
    info = await wait(runtime, job)
    assert (info.exit_code, info.signal, info.lost, info.oom_killed) == (3, None, False, False)
    assert info.ended_at is not None
    assert before.timestamp() - 1 <= info.ended_at.timestamp() <= time.time() + 1


@requires_root
async def test_runs_as_a_uid_of_its_own_without_new_privileges(
    runtime: LocalRuntime, launch: Launch
) -> None:
    job = await launch(
        "sh", "-c", "id -u; id -g; id -G; grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/self/status"
    )
    held = runtime.uids.records.holder(os.stat(job.request.workdir).st_uid)
    await wait(runtime, job)
    lines = job.output.split("\n")
    uid = int(lines[0])
    first, last = DEFAULT_UID_RANGE
    assert first <= uid <= last
    assert lines[:3] == [str(uid)] * 3  # its gid is the same number, and no other group
    fields = dict(line.split(":\t") for line in lines[3:] if line)
    assert fields == {"NoNewPrivs": "1", "CapEff": "0" * 16, "CapBnd": "0" * 16}
    work = os.stat(job.request.workdir)
    assert (work.st_uid, work.st_gid, work.st_mode & 0o777) == (uid, uid, 0o700)
    assert held == job.id  # recorded while it ran...
    await runtime.cleanup(job.id, job.handle)
    assert runtime.uids.records.holder(uid) is None  # ...and given back at the end


@requires_root
async def test_job_is_pid_1_and_sees_only_its_own_processes(
    runtime: LocalRuntime, launch: Launch
) -> None:
    job = await launch(
        "sh",
        "-c",
        # Straight to the output: a pipe or a redirection would give PID 1 (the shell)
        # fds of its own while `ls` looks.
        "echo $$; ls /proc/1/fd; echo --; ps -e -o pid=,comm=; echo --; ls -A /tmp;"
        " touch /tmp/mine",
    )
    await wait(runtime, job)
    first, rest = job.output.split("\n", 1)
    fds, processes, tmp = rest.split("--\n")
    assert first == "1"
    assert fds.split() == ["0", "1", "2"]  # nothing of the server's or the supervisor's
    commands = {line.split()[1] for line in processes.splitlines()}
    assert commands == {"sh", "ps"}
    assert tmp == ""  # a private, empty /tmp
    assert not Path("/tmp/mine").exists()


@requires_root
async def test_environment_is_only_the_jobs(
    runtime: LocalRuntime, launch: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVER_ONLY_SECRET", "leak")
    job = await launch(
        "env", environment={"GREETING": "hi there"}, secret_environment={"TOKEN": "s3cret"}
    )
    await wait(runtime, job)
    env = dict(line.split("=", 1) for line in job.output.splitlines())
    assert env.pop("GREETING") == "hi there"
    assert env.pop("TOKEN") == "s3cret"
    assert env.pop("JOBYARD_JOB_ID") == job.id
    # A single-replica job is rank 0 of 1, as the replica files say too.
    replica = {key: env.pop(key) for key in list(env) if key.startswith("JOBYARD_")}
    assert replica == {"JOBYARD_RANK": "0", "JOBYARD_NUMBER_OF_NODES": "1",
                       "JOBYARD_CORES": "1", "JOBYARD_NODES": "127.0.0.1"}  # fmt: skip
    assert env.pop("HOME") == "/work"
    assert set(env) <= {"PATH", "LANG", "PWD"}


@requires_root
async def test_root_stages_never_see_the_jobs_environment(
    runtime: LocalRuntime, launch: Launch
) -> None:
    # Every dynamically linked program honours LD_PRELOAD (and warns when it cannot load
    # it): only the job's own command, run as the job user, may.
    job = await launch("true", environment={"LD_PRELOAD": "/nonexistent/evil.so"})
    info = await wait(runtime, job)
    assert info.exit_code == 0
    assert job.output.count("evil.so") == 1  # `true` itself, and nothing before it
    assert (job.request.state_dir / "shim.log").read_text() == ""


@requires_root
async def test_network_none_leaves_only_loopback(runtime: LocalRuntime, launch: Launch) -> None:
    isolated = await launch("cat", "/proc/net/dev", network="none")
    shared = await launch("cat", "/proc/net/dev")
    await wait(runtime, isolated)
    await wait(runtime, shared)

    def interfaces(net_dev: str) -> set[str]:
        return {line.split(":")[0].strip() for line in net_dev.splitlines()[2:]}

    assert interfaces(isolated.output) == {"lo"}
    assert interfaces(shared.output) == interfaces(Path("/proc/net/dev").read_text())


@requires_root
async def test_limits_are_applied_before_the_command_runs(
    runtime: LocalRuntime, launch: Launch, data_dir: Path
) -> None:
    io_device = block_device_of(data_dir)
    job = await launch(
        "sh",
        "-c",
        "cat /proc/self/cgroup; sleep 100",
        max_cpu=50,
        cpu_cores="0",
        max_memory=64,
        max_pids=77,
        max_iobps=1048576 if io_device else 0,
    )
    cgroup = runtime.cgroups.job(job.id)
    await eventually(lambda: len(cgroup.pids()) >= 2, "the job's processes")
    values = limit_values(runtime, job.id)
    expected = {"cpu": "50000", "cpuset": "0", "memory": str(64 << 20), "pids": "77"}
    if io_device:
        expected["io"] = f"{io_device} 1048576"
    assert values == expected
    await eventually(lambda: "\n" in job.output, "the job's output")
    assert f"/{CGROUP_ROOT}/{job.id}" in job.output


def limit_values(runtime: LocalRuntime, job_id: str) -> dict[str, str]:
    """The limits as the kernel holds them for the job (v1 or v2 files)."""
    cgroup = runtime.cgroups.job(job_id)
    out: dict[str, str] = {}
    if isinstance(cgroup, JobCgroupV1):
        dirs = cgroup.dirs
        out["cpu"] = (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip()
        out["cpuset"] = (dirs["cpuset"] / "cpuset.cpus").read_text().strip()
        out["memory"] = (dirs["memory"] / "memory.limit_in_bytes").read_text().strip()
        out["pids"] = (dirs["pids"] / "pids.max").read_text().strip()
        io = (dirs["blkio"] / "blkio.throttle.write_bps_device").read_text().strip()
    else:
        assert isinstance(cgroup, JobCgroupV2)
        path = cgroup.path
        out["cpu"] = (path / "cpu.max").read_text().split()[0]
        out["cpuset"] = (path / "cpuset.cpus").read_text().strip()
        out["memory"] = (path / "memory.max").read_text().strip()
        out["pids"] = (path / "pids.max").read_text().strip()
        io = (path / "io.max").read_text().strip().replace(" rbps=", " ").split(" wbps=")[0]
    if io:
        out["io"] = io
    return out


@requires_root
async def test_memory_hog_is_oom_killed(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch(
        "python3", "-c", "b = bytearray(200 * 1024 * 1024); print('survived')", max_memory=50
    )
    info = await wait(runtime, job)
    assert info.oom_killed
    assert (info.exit_code, info.signal) == (137, signal.SIGKILL)
    assert "survived" not in job.output


@requires_root
async def test_usage_counts_cpu_and_memory(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch(
        "python3",
        "-c",
        "import time\nb = bytearray(30 << 20)\nt = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass",
    )
    await wait(runtime, job)
    usage = await runtime.usage(job.id, job.handle)
    assert usage.cpu_seconds >= 0.25
    assert usage.memory_peak_bytes >= 30 << 20


# -- control ----------------------------------------------------------------------------


@requires_root
async def test_stop_kills_a_job_that_ignores_sigterm(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch("sh", "-c", "trap '' TERM; echo ready; sleep 100")
    await eventually(lambda: job.output == "ready\n", "the job to start")
    started = time.monotonic()
    await runtime.stop(job.id, job.handle, grace_seconds=0.2)
    info = await wait(runtime, job)
    assert time.monotonic() - started < 1.0
    assert info.signal == signal.SIGKILL
    assert job.output == "ready\n"  # no launcher complaint about the signal


@requires_root
async def test_stop_ends_a_pid_1_without_a_sigterm_handler_at_once(
    runtime: LocalRuntime, launch: Launch
) -> None:
    # The kernel spares a namespace's PID 1 the SIGTERM it has no handler for: without help
    # every such stop would last the whole grace period.
    job = await launch("sleep", "100")
    cgroup = runtime.cgroups.job(job.id)
    await eventually(lambda: len(cgroup.pids()) == 1, "the job's process")
    started = time.monotonic()
    await runtime.stop(job.id, job.handle, grace_seconds=5.0)
    info = await wait(runtime, job)
    assert time.monotonic() - started < 1.0
    assert info.signal == signal.SIGKILL


@requires_root
async def test_stop_lets_children_handle_sigterm_before_pid_1_ends(
    runtime: LocalRuntime, launch: Launch
) -> None:
    child = (
        "trap 'sleep 0.3; echo cleaned > cleaned; exit 0' TERM; echo ready;"
        " while :; do sleep 0.05; done"
    )
    job = await launch("sh", "-c", '( sh -c "$0" & ); exec sleep 100', child)
    await eventually(lambda: job.output == "ready\n", "the job to start")
    started = time.monotonic()
    await runtime.stop(job.id, job.handle, grace_seconds=5.0)
    info = await wait(runtime, job)
    assert job.file("cleaned").read_text() == "cleaned\n"  # its handler ran to the end
    assert 0.3 <= time.monotonic() - started < 2.0  # then PID 1 went, long before the grace
    assert info.signal == signal.SIGKILL


@requires_root
async def test_stop_reaches_double_forked_setsid_processes(
    runtime: LocalRuntime, launch: Launch
) -> None:
    # The grandchild leaves the job's session and process group and is orphaned; it
    # records SIGTERM when it gets one. The main process ignores SIGTERM.
    grandchild = (
        "trap 'echo term > got-term; exit 0' TERM; echo $$ > grandchild;"
        " while :; do sleep 0.05; done"
    )
    main = (
        '( setsid sh -c "$0" & ); while [ ! -s grandchild ]; do sleep 0.02; done;'
        " trap '' TERM; echo ready; sleep 100"
    )
    job = await launch("sh", "-c", main, grandchild)
    await eventually(lambda: job.output == "ready\n", "the job to start")
    cgroup = runtime.cgroups.job(job.id)
    host_pid = host_pid_of(cgroup, read_int(job.file("grandchild")) or 0)
    assert os.getsid(host_pid) == host_pid  # it really is in a session of its own

    await runtime.stop(job.id, job.handle, grace_seconds=1.0)
    info = await wait(runtime, job)
    assert job.file("got-term").read_text() == "term\n"
    assert not alive(host_pid)
    assert cgroup.pids() == []
    assert info.signal == signal.SIGKILL


@requires_root
async def test_suspend_freezes_and_resume_thaws(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch("sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > count; sleep 0.01; done")
    count = job.file("count")
    await eventually(lambda: (read_int(count) or 0) > 3, "the counter to run")

    await runtime.suspend(job.id, job.handle)
    assert runtime.cgroups.job(job.id).frozen()
    frozen_at = count.read_text()
    await asyncio.sleep(0.5)
    assert count.read_text() == frozen_at

    await runtime.resume(job.id, job.handle)
    assert not runtime.cgroups.job(job.id).frozen()
    await eventually(lambda: (read_int(count) or 0) > int(frozen_at or 0) + 3, "the counter")


@requires_root
async def test_suspend_of_an_unknown_job_is_refused(runtime: LocalRuntime) -> None:
    with pytest.raises(FailedPrecondition):
        await runtime.suspend("no-such-job", Handle("1:1:/nonexistent"))


@requires_root
async def test_stop_of_a_suspended_job(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch("sh", "-c", "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done")
    await eventually(lambda: job.output == "ready\n", "the job to start")
    await runtime.suspend(job.id, job.handle)
    await runtime.stop(job.id, job.handle, grace_seconds=5.0)
    info = await wait(runtime, job)
    assert info.exit_code == 9  # thawed to handle SIGTERM within the grace period


# -- restart and loss -------------------------------------------------------------------


@requires_root
async def test_wait_from_a_new_runtime_after_a_restart(launch: Launch) -> None:
    job = await launch("sh", "-c", "sleep 0.5; exit 7")
    restarted = LocalRuntime(new_config())
    info = await asyncio.wait_for(restarted.wait(job.id, job.handle), WAIT_SECONDS)
    assert (info.exit_code, info.lost) == (7, False)


@requires_root
async def test_wait_from_a_new_runtime_after_the_job_ended(launch: Launch) -> None:
    job = await launch("sh", "-c", "exit 5")
    exit_file = job.request.state_dir / "exit"
    await eventually(exit_file.exists, "the exit status")
    restarted = LocalRuntime(new_config())
    info = await asyncio.wait_for(restarted.wait(job.id, job.handle), WAIT_SECONDS)
    assert (info.exit_code, info.lost) == (5, False)
    assert info.ended_at == datetime.fromtimestamp(exit_file.stat().st_mtime, UTC)


LAUNCHER = """
import asyncio, sys
from pathlib import Path
from jobyard.domain.jobs import JobSpec
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local import LocalRuntime, LocalRuntimeConfig

job_dir = Path(sys.argv[1])
request = LaunchRequest(
    job_dir.name, JobSpec("sh", ("-c", "sleep 0.5; exit 7")),
    job_dir / "output.log", job_dir / "run", job_dir / "work",
)
config = LocalRuntimeConfig(cgroup_root=sys.argv[2])
print(asyncio.run(LocalRuntime(config).start(request)).backend_id)
"""


@requires_root
async def test_wait_for_a_job_another_server_process_started(
    runtime: LocalRuntime, data_dir: Path
) -> None:
    job_dir = data_dir / "jobs" / str(uuid.uuid4())
    job_dir.mkdir(parents=True)
    launched = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LAUNCHER, str(job_dir), CGROUP_ROOT, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await launched.communicate()  # that "server" is gone now
    handle = Handle(stdout.decode().strip())
    try:
        info = await asyncio.wait_for(runtime.wait(job_dir.name, handle), WAIT_SECONDS)
    finally:
        await runtime.cleanup(job_dir.name, handle)
    assert (info.exit_code, info.lost) == (7, False)


@requires_root
async def test_killed_supervisor_means_lost_and_cleanup_kills_the_job(
    runtime: LocalRuntime, launch: Launch
) -> None:
    job = await launch("sleep", "100")
    cgroup = runtime.cgroups.job(job.id)
    await eventually(lambda: len(cgroup.pids()) == 1, "the job's process")
    [job_pid] = cgroup.pids()
    os.kill(job.shim_pid, signal.SIGKILL)

    info = await wait(runtime, job)
    assert info.lost
    assert info.exit_code is None
    assert alive(job_pid)  # the supervisor is gone, not the job
    await runtime.cleanup(job.id, job.handle)
    assert not alive(job_pid)
    assert not cgroup.exists()


@requires_root
async def test_cleanup_removes_the_cgroups(runtime: LocalRuntime, launch: Launch) -> None:
    job = await launch("true")
    await wait(runtime, job)
    dirs = cgroup_dirs(runtime, job.id)
    assert dirs
    assert all(d.is_dir() for d in dirs)
    await runtime.cleanup(job.id, job.handle)
    assert not any(d.exists() for d in dirs)
    await runtime.cleanup(job.id, job.handle)  # idempotent


# -- launch failures --------------------------------------------------------------------


@requires_root
async def test_impossible_limit_is_a_launch_error_leaving_nothing(
    runtime: LocalRuntime, data_dir: Path
) -> None:
    request = make_request(
        data_dir, "touch", "/proc/never", cpu_cores=str((os.cpu_count() or 1) + 61)
    )
    with pytest.raises(LaunchError, match=r"cpuCores=\d+"):
        await runtime.start(request)
    assert not any(d.exists() for d in cgroup_dirs(runtime, request.job_id))
    assert not request.workdir.exists()
    assert not request.state_dir.exists()


@requires_root
async def test_io_limit_off_a_block_device_is_a_launch_error(runtime: LocalRuntime) -> None:
    shm = Path("/dev/shm")
    if block_device_of(shm):
        pytest.skip("/dev/shm is on a block device here")
    data_dir = shm / f"jobyard-test-{uuid.uuid4()}"
    data_dir.mkdir()
    try:
        request = make_request(data_dir, "true", max_iobps=1000)
        with pytest.raises(LaunchError, match=r"maxIOBPS=1000.*not on a block device"):
            await runtime.start(request)
        assert not any(d.exists() for d in cgroup_dirs(runtime, request.job_id))
    finally:
        shutil.rmtree(data_dir)


@requires_root
async def test_cgroup_join_failure_stops_the_command_from_running(data_dir: Path) -> None:
    runtime = LocalRuntime(new_config(), cgroups=UnjoinableCgroups(new_config()))
    request = make_request(data_dir, "touch", "ran")
    handle = await runtime.start(request)
    try:
        info = await asyncio.wait_for(runtime.wait(request.job_id, handle), WAIT_SECONDS)
    finally:
        await runtime.cleanup(request.job_id, handle)
    assert info.exit_code == 125
    assert info.message.startswith("launch failed: cannot join the job's cgroup /nonexistent")
    assert not (request.workdir / "ran").exists()


class UnjoinableCgroups:
    """The real driver, but the job's cgroups cannot be joined."""

    def __init__(self, config: LocalRuntimeConfig) -> None:
        self._real = LocalRuntime(config).cgroups
        self.version = self._real.version

    def create(self, job_id: str, limits: Limits) -> JobCgroup:
        cgroup = self._real.create(job_id, limits)
        cgroup.procs_files = lambda: [Path("/nonexistent/cgroup.procs")]  # type: ignore[method-assign]
        return cgroup

    def job(self, job_id: str) -> JobCgroup:
        return self._real.job(job_id)


@requires_root
async def test_the_private_run_keeps_what_the_hosts_resolv_conf_needs(data_dir: Path) -> None:
    kept = Path(f"/run/jobyard-test-keep-{uuid.uuid4().hex[:8]}")
    kept.mkdir()
    (kept / "stub-resolv.conf").write_text("nameserver 127.0.0.53\n")
    (Path("/run") / f"{kept.name}-sibling").mkdir()
    runtime = LocalRuntime(dataclasses.replace(new_config(), run_keeps=(str(kept),)))
    request = make_request(
        data_dir, "sh", "-c", f"cat {kept}/stub-resolv.conf; ls /run; touch {kept}/x || :"
    )
    try:
        handle = await runtime.start(request)
        info = await asyncio.wait_for(runtime.wait(request.job_id, handle), WAIT_SECONDS)
        await runtime.cleanup(request.job_id, handle)
    finally:
        shutil.rmtree(kept)
        (Path("/run") / f"{kept.name}-sibling").rmdir()
    out = request.output_path.read_text()
    assert info.exit_code == 0
    assert out.startswith("nameserver 127.0.0.53\n")  # kept...
    assert f"{kept.name}-sibling" not in out  # ...and nothing else of the host's /run
    assert "Read-only file system" in out
