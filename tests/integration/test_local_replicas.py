"""The local runtime's replicas, below the engine: one supervisor per rank behind one handle,
adopted by a new runtime instance, stopped as a whole, rolled back when a launch fails part
way. Needs root and cgroups, as every test of the real runtime."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from jobyard.domain.errors import LaunchError
from jobyard.domain.jobs import JobSpec
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest
from jobyard.runtime.local import LocalRuntime, LocalRuntimeConfig
from jobyard.runtime.local.cgroups import JobCgroup
from jobyard.runtime.local.supervisors import Supervisors
from tests.conftest import root_problem

pytestmark = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")

CGROUP_ROOT = "jobyard-test"
WAIT_SECONDS = 30.0


def new_runtime() -> LocalRuntime:
    """A runtime instance of its own, as a restarted server would have."""
    config = LocalRuntimeConfig(cgroup_root=CGROUP_ROOT)
    return LocalRuntime(config)


def request(data_dir: Path, replicas: int, *argv: str) -> LaunchRequest:
    job_id = str(uuid.uuid4())
    job_dir = data_dir / "jobs" / job_id
    job_dir.mkdir(mode=0o711, parents=True)
    outputs = tuple(job_dir / f"output.rank-{rank}.log" for rank in range(1, replicas))
    spec = JobSpec(argv[0], argv[1:], replicas=replicas)
    return LaunchRequest(
        job_id, spec, job_dir / "output.log", job_dir / "run", job_dir / "work", outputs
    )


def output(req: LaunchRequest, rank: int) -> str:
    return req.output(rank).read_text()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


Started = tuple[LaunchRequest, Handle]


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[list[Started]]:
    """Jobs a test started; whatever is left is stopped and its cgroup removed."""
    jobs: list[Started] = []
    yield jobs
    runtime = new_runtime()
    for req, handle in jobs:
        await runtime.stop(req.job_id, handle, 0)
        await asyncio.wait_for(runtime.wait(req.job_id, handle), WAIT_SECONDS)
        await runtime.cleanup(req.job_id, handle)


async def launch(jobs: list[Started], req: LaunchRequest) -> Handle:
    handle = await new_runtime().start(req)
    jobs.append((req, handle))
    return handle


async def wait_with(runtime: LocalRuntime, req: LaunchRequest, handle: Handle) -> ExitInfo:
    return await asyncio.wait_for(runtime.wait(req.job_id, handle), WAIT_SECONDS)


async def test_a_new_runtime_waits_for_every_rank(tmp_path: Path, started: list[Started]) -> None:
    req = request(tmp_path, 3, "sh", "-c", 'sleep "0.$JOBYARD_RANK"; echo "r$JOBYARD_RANK"')
    handle = await launch(started, req)
    assert len(Supervisors.parse(handle).ranks) == 3
    info = await wait_with(new_runtime(), req, handle)  # not the instance that started it
    assert (info.exit_code, info.lost, info.message) == (0, False, "")
    assert [output(req, rank) for rank in range(3)] == ["r0\n", "r1\n", "r2\n"]


async def test_a_new_runtime_reports_the_rank_that_failed_first(
    tmp_path: Path, started: list[Started]
) -> None:
    script = '[ "$JOBYARD_RANK" = 1 ] && { sleep 0.3; exit 9; }; exec sleep 100'
    req = request(tmp_path, 3, "sh", "-c", script)
    handle = await launch(started, req)
    info = await wait_with(new_runtime(), req, handle)
    assert (info.exit_code, info.message) == (9, "rank 1 failed: exit code 9")


def commands(cgroup: JobCgroup) -> list[str]:
    """The command names of the cgroup's processes: a rank counts once its command runs
    (a process in the cgroup may still be its launch chain, setting up the mounts)."""
    names = []
    for pid in cgroup.pids():
        with contextlib.suppress(FileNotFoundError):
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
    return names


async def test_stop_from_a_new_runtime_ends_every_rank_at_once(
    tmp_path: Path, started: list[Started]
) -> None:
    req = request(tmp_path, 4, "sleep", "100")  # four PID 1s without a SIGTERM handler
    handle = await launch(started, req)
    runtime = new_runtime()
    cgroup = runtime.cgroups.job(req.job_id)
    await eventually(lambda: commands(cgroup) == ["sleep"] * 4, "every rank's command")
    shims = [s.pid for s in Supervisors.parse(handle).ranks]
    began = time.monotonic()
    await runtime.stop(req.job_id, handle, grace_seconds=5.0)
    info = await wait_with(runtime, req, handle)
    assert time.monotonic() - began < 2.0  # not the 5 s grace
    assert info.signal == signal.SIGKILL
    assert not any(map(alive, [*shims, *cgroup.pids()]))
    await runtime.cleanup(req.job_id, handle)
    assert not cgroup.exists()


async def test_a_rank_whose_supervisor_dies_is_lost_and_stops_the_job(
    tmp_path: Path, started: list[Started]
) -> None:
    req = request(tmp_path, 2, "sleep", "100")
    handle = await launch(started, req)
    runtime = new_runtime()
    cgroup = runtime.cgroups.job(req.job_id)
    await eventually(lambda: commands(cgroup) == ["sleep"] * 2, "every rank's command")
    os.kill(Supervisors.parse(handle).ranks[1].pid, signal.SIGKILL)
    info = await wait_with(runtime, req, handle)
    assert info.lost
    assert info.message == (
        "rank 1 failed: the job's supervisor ended without recording an exit status"
    )
    assert not runtime.cgroups.job(req.job_id).pids()  # rank 0, and rank 1's orphan


async def test_a_launch_failing_part_way_leaves_no_rank_running(tmp_path: Path) -> None:
    req = request(tmp_path, 3, "sleep", "100")
    req.output(2).mkdir()  # rank 2's output cannot be opened: ranks 0 and 1 already run
    runtime = new_runtime()
    with pytest.raises(LaunchError, match="cannot start the job"):
        await runtime.start(req)
    assert not runtime.cgroups.job(req.job_id).exists()
    assert not req.state_dir.exists()
    assert not req.workdir.exists()


async def test_a_rank_without_an_output_path_is_a_launch_error(tmp_path: Path) -> None:
    req = request(tmp_path, 1, "true")
    req = LaunchRequest(req.job_id, JobSpec("true", replicas=2), req.output_path,
                        req.state_dir, req.workdir)  # fmt: skip
    runtime = new_runtime()
    with pytest.raises(LaunchError, match="no output file was given for it"):
        await runtime.start(req)
    assert not runtime.cgroups.job(req.job_id).exists()
