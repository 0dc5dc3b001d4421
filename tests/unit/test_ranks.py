"""Replicas without processes: what ranks are told, how their ends make the job's end, the
handle that names every rank's supervisor, and where each rank's output goes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec, Resources
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime.base import ExitInfo, Handle
from jobyard.runtime.local.supervisors import Supervisor, Supervisors, rank_dir
from jobyard.runtime.ranks import RankInfo, combine_exits, cores, first_failure

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- what each rank is told ------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "replicas", "expected"),
    [
        (Resources(max_cpu=0), 1, 8),  # unlimited: the host's CPUs
        (Resources(max_cpu=150), 1, 2),  # a started core counts
        (Resources(max_cpu=400), 2, 2),  # shared by the ranks
        (Resources(max_cpu=0, cpu_cores="0-1,4"), 1, 3),  # the cpuset's size
        (Resources(max_cpu=100, cpu_cores="0-3"), 1, 1),  # the smaller of the two
        (Resources(max_cpu=100), 3, 1),  # never less than one
    ],
)
def test_cores_share_the_jobs_allowance(resources: Resources, replicas: int, expected: int) -> None:
    assert cores(resources, replicas, host_cpus=8) == expected


def test_every_rank_gets_the_ucloud_files_and_variables() -> None:
    info = RankInfo("job-1", replicas=3, cores=2)
    assert info.shared_files() == {
        "number_of_nodes.txt": "3\n",
        "cores.txt": "2\n",
        "job_id.txt": "job-1\n",
        "node-0.txt": "127.0.0.1\n",
        "node-1.txt": "127.0.0.1\n",
        "node-2.txt": "127.0.0.1\n",
    }
    assert RankInfo.rank_file(2) == "2\n"
    assert info.environment(1) == {
        "JOBYARD_JOB_ID": "job-1",
        "JOBYARD_RANK": "1",
        "JOBYARD_NUMBER_OF_NODES": "3",
        "JOBYARD_CORES": "2",
        "JOBYARD_NODES": "127.0.0.1,127.0.0.1,127.0.0.1",
    }


# -- the job's end from its ranks' ends ---------------------------------------------------


def test_a_single_rank_is_the_job_message_untouched() -> None:
    end = ExitInfo(exit_code=3, ended_at=at(1))
    assert combine_exits([end]) == end
    assert combine_exits([end], oom_killed=True).oom_killed


def test_the_job_succeeds_when_every_rank_does_and_ends_with_the_last() -> None:
    info = combine_exits([ExitInfo(0, ended_at=at(2)), ExitInfo(0, ended_at=at(5))])
    assert (info.exit_code, info.ended_at, info.message) == (0, at(5), "")


def test_the_earliest_failure_names_the_job_and_its_rank() -> None:
    ranks = [
        ExitInfo(143, signal=15, ended_at=at(4)),  # stopped because rank 2 failed
        ExitInfo(0, ended_at=at(1)),
        ExitInfo(3, ended_at=at(3)),
    ]
    info = combine_exits(ranks)
    assert (info.exit_code, info.signal, info.ended_at) == (3, None, at(4))
    assert info.message == "rank 2 failed: exit code 3"


def test_the_failure_the_runtime_saw_first_wins_over_coarse_end_times() -> None:
    ranks = [ExitInfo(137, signal=9, ended_at=at(1)), ExitInfo(3, ended_at=at(1))]
    assert first_failure(dict(enumerate(ranks))) == 0  # a tie goes to the lower rank
    info = combine_exits(ranks, first=1)
    assert (info.exit_code, info.message) == (3, "rank 1 failed: exit code 3")


@pytest.mark.parametrize(
    ("end", "oom", "message"),
    [
        (ExitInfo(137, signal=9, ended_at=at(1)), False, "rank 1 failed: killed by signal 9"),
        (ExitInfo(137, signal=9, ended_at=at(1)), True, "rank 1 failed: killed: out of memory"),
        (ExitInfo(None, lost=True, message="gone"), False, "rank 1 failed: gone"),
        (
            ExitInfo(125, launch_failed=True, message="launch failed: no mount", ended_at=at(1)),
            False,
            "rank 1 failed: launch failed: no mount",
        ),
    ],
)
def test_every_kind_of_rank_failure_is_named(end: ExitInfo, oom: bool, message: str) -> None:
    info = combine_exits([ExitInfo(0, ended_at=at(2)), end], oom_killed=oom)
    assert info.message == message
    assert (info.lost, info.launch_failed, info.oom_killed) == (end.lost, end.launch_failed, oom)


def test_a_lost_rank_counts_after_ranks_whose_end_is_known() -> None:
    ranks = {0: ExitInfo(None, lost=True), 1: ExitInfo(2, ended_at=at(9))}
    assert first_failure(ranks) == 1
    assert first_failure({0: ExitInfo(0, ended_at=at(1))}) is None


# -- handles ------------------------------------------------------------------------------


def test_a_handle_names_every_ranks_supervisor() -> None:
    supervisors = Supervisors((Supervisor(10, 100), Supervisor(11, 101)), Path("/d/jobs/x/run"))
    assert supervisors.handle == Handle("10:100,11:101:/d/jobs/x/run")
    assert Supervisors.parse(supervisors.handle) == supervisors
    assert supervisors.rank_dir(0) == Path("/d/jobs/x/run")
    assert rank_dir(Path("/d/jobs/x/run"), 3) == Path("/d/jobs/x/run/rank-3")


def test_a_handle_from_before_replicas_is_one_rank() -> None:
    parsed = Supervisors.parse(Handle("4242:777:/var/lib/jobyard/jobs/a b:c/run"))
    assert parsed.ranks == (Supervisor(4242, 777),)
    assert parsed.state_dir == Path("/var/lib/jobyard/jobs/a b:c/run")


@pytest.mark.parametrize("bad", ["", "fake-1", "1:2", "1:2:relative", "1:2,3:/x", "a:b:/x"])
def test_anything_else_is_not_a_handle(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="not a local runtime handle"):
        Supervisors.parse(Handle(bad))


# -- ranks of a job and their output --------------------------------------------------------


def test_a_rank_the_job_lacks_is_refused() -> None:
    JobSpec("true", replicas=3).check_rank(2)
    with pytest.raises(InvalidArgument, match=r"invalid rank 3: the job has 3 replicas \(ranks"):
        JobSpec("true", replicas=3).check_rank(3)
    with pytest.raises(InvalidArgument, match=r"invalid rank 1: the job has 1 replica \(rank 0"):
        JobSpec("true").check_rank(1)
    with pytest.raises(InvalidArgument, match="invalid rank -1"):
        JobSpec("true").check_rank(-1)


def test_rank_0_writes_the_jobs_output_and_other_ranks_files_beside_it(tmp_path: Path) -> None:
    layout = JobLayout(tmp_path)
    layout.prepare()
    assert layout.output("j") == layout.output("j", 0) == tmp_path / "jobs/j/output.log"
    assert layout.output("j", 2) == tmp_path / "jobs/j/output.rank-2.log"
    assert layout.output_sizes("j") == []
    layout.create_job_dir("j", replicas=3)
    layout.output("j", 1).write_bytes(b"abc")
    assert layout.output_sizes("j") == [0, 3, 0]


async def test_a_rank_follower_reads_its_rank_and_ends_with_the_job(tmp_path: Path) -> None:
    layout = JobLayout(tmp_path)
    layout.prepare()
    layout.create_job_dir("j", replicas=2)
    hub = LogHub(layout)
    hub.start()
    try:
        layout.output("j", 0).write_bytes(b"rank 0\n")
        layout.output("j", 1).write_bytes(b"rank 1\n")

        async def follow_rank_1() -> list[tuple[int, bytes]]:
            reader = hub.read("j", follow=True, ended=lambda: False, rank=1)
            return [chunk async for chunk in reader]

        task = asyncio.create_task(follow_rank_1())
        await asyncio.sleep(0.05)
        with layout.output("j", 1).open("ab") as f:
            f.write(b"more\n")
        await asyncio.sleep(0.05)
        hub.job_ended("j")  # wakes the followers of every rank of the job
        chunks = await asyncio.wait_for(task, 2.0)
        assert b"".join(data for _, data in chunks) == b"rank 1\nmore\n"
        assert hub.start_offset("j", tail_lines=1, rank=1) == len(b"rank 1\n")
        assert hub.size("j", 1) == len(b"rank 1\nmore\n")
    finally:
        hub.close()
