"""The sbatch command, the launch file and the rank placement of the slurm backend."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from jobyard.domain.errors import LaunchError
from jobyard.domain.jobs import JobSpec, Resources
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local.mounts import JobView
from jobyard.runtime.local.runtime import OPEN_STAGE
from jobyard.runtime.local.supervisors import rank_dir
from jobyard.runtime.local.users import JobIds
from jobyard.runtime.slurm.launch import (
    ChainTools,
    SbatchOptions,
    SlurmLaunch,
    env_script,
    prepare_ranks,
    sbatch_argv,
    slurm_time,
)
from jobyard.runtime.slurm.launcher import placement

JOB = "0b7f6d4e-0000-4000-8000-000000000001"


def request(tmp_path: Path, **changes: object) -> LaunchRequest:
    spec = JobSpec(command="sh", args=("-c", "true"), **changes)  # type: ignore[arg-type]
    job_dir = tmp_path / "jobs" / JOB
    outputs = tuple(job_dir / f"output.rank-{r}.log" for r in range(1, spec.replicas))
    return LaunchRequest(JOB, spec, job_dir / "output.log", job_dir / "run", job_dir / "work",
                         outputs)  # fmt: skip


def options(argv: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(1, "00:01:00"), (61, "00:01:01"), (3600, "01:00:00"), (90061, "1-01:01:01")],
)
def test_slurm_time_is_rounded_up_and_at_least_a_minute(seconds: float, expected: str) -> None:
    assert slurm_time(seconds) == expected


def test_limits_map_to_sbatch_options_and_time_is_always_given(tmp_path: Path) -> None:
    req = request(tmp_path, resources=Resources(max_cpu=250, max_memory=1024),
                  time_limit_seconds=120)  # fmt: skip
    argv = sbatch_argv("/usr/bin/sbatch", req, SbatchOptions(partition="debug", qos="low"))
    opts = options(argv)
    assert opts["time"] == "00:03:00"  # the job's 2 min + the margin jobyard stops within
    assert (opts["cpus-per-task"], opts["mem"], opts["ntasks"]) == ("3", "1024", "1")
    assert (opts["partition"], opts["qos"]) == ("debug", "low")
    assert "account" not in opts and "nodes" not in opts
    assert opts["job-name"] == f"jobyard-{JOB}"
    # ALL of sbatch's bare environment: NONE would run a login shell on the node per job.
    assert opts["export"] == "ALL" and "--no-requeue" in argv
    assert argv[-1] == str(req.state_dir / "slurm" / "batch.sh")
    no_limit = options(sbatch_argv("sbatch", request(tmp_path), SbatchOptions()))
    assert no_limit["time"] == "1-00:00:00"  # the default: Slurm never gets a job without one


def test_replicas_share_the_job_limits_over_their_tasks(tmp_path: Path) -> None:
    req = request(tmp_path, replicas=4, resources=Resources(max_cpu=400, max_memory=1000))
    opts = options(sbatch_argv("sbatch", req, SbatchOptions()))
    assert (opts["ntasks"], opts["nodes"], opts["cpus-per-task"]) == ("4", "1-4", "1")
    assert opts["mem-per-cpu"] == "250" and "mem" not in opts


def test_each_rank_gets_the_local_chain_its_mounts_and_a_root_only_launch(
    tmp_path: Path,
) -> None:
    req = request(tmp_path, environment={"A": "1"}, secret_environment={"TOKEN": "s3 cret"},
                  replicas=2)  # fmt: skip
    for rank in range(2):
        rank_dir(req.state_dir, rank).mkdir(parents=True)
    tools = ChainTools("/usr/bin/unshare", "/usr/bin/setpriv", "/usr/bin/mount")
    view = JobView(200001, 200001, (tmp_path,))
    launch = prepare_ranks(req, JobIds(200001, 200001), 1, 0.1, view, tools)
    path = tmp_path / "launch.json"
    launch.write(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the secret environment
    assert SlurmLaunch.read(path) == launch
    first = launch.ranks[0]
    assert first.argv[:3] == ("/bin/sh", "-c", OPEN_STAGE)
    assert "--reuid=200001" in first.argv and "--pid" in first.argv
    assert first.argv[-2:] == ("-c", "true")
    assert "export TOKEN='s3 cret'\n" in first.env and "export JOBYARD_RANK=0\n" in first.env
    assert launch.ranks[1].output == str(req.output(1))
    for rank in range(2):  # the local runtime's mounts: /work, a read-only root, ...
        fstab = (rank_dir(req.state_dir, rank) / "mounts.fstab").read_text()
        assert f"{req.workdir} /work none bind,nosuid,nodev 0 0" in fstab
        assert "jobyard-root /. none remount,bind,ro 0 0" in fstab
    assert (req.state_dir / "info" / "number_of_nodes.txt").read_text() == "2\n"
    assert (req.state_dir / "info" / "job_id.txt").read_text() == f"{JOB}\n"


def test_a_bad_environment_name_is_refused_before_anything_runs() -> None:
    with pytest.raises(LaunchError, match="invalid environment variable name 'A B'"):
        env_script({"A B": "1"})


def test_ranks_read_the_id_the_job_was_created_under(tmp_path: Path) -> None:
    req = request(tmp_path, labels={"ucloud.jobId": "54112"})
    rank_dir(req.state_dir, 0).mkdir(parents=True)
    tools = ChainTools("/usr/bin/unshare", "/usr/bin/setpriv", "/usr/bin/mount")
    view = JobView(200001, 200001)
    launch = prepare_ranks(req, JobIds(200001, 200001), 1, 0.1, view, tools)
    assert (req.state_dir / "info" / "job_id.txt").read_text() == "54112\n"
    assert "export JOBYARD_JOB_ID=54112\n" in launch.ranks[0].env and launch.job_id == JOB


@pytest.mark.parametrize(
    ("nodes", "tasks", "expected"),
    [(["vm"], "2", ["vm", "vm"]), (["a", "b"], "2(x2)", ["a", "a", "b"]),
     (["a", "b", "c"], "1,2", ["a", "b", "b"])],
)  # fmt: skip
def test_ranks_are_placed_in_slurms_block_order(
    nodes: list[str], tasks: str, expected: list[str]
) -> None:
    assert placement(nodes, tasks, len(expected)) == expected
