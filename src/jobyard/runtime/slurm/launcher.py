"""The batch script's one process: ``python -m jobyard.runtime.slurm.launcher STATE``.

Runs as root on the allocation's first node, for jobs of several ranks (a one-rank job's
batch script runs its step directly: no ``srun``, one interpreter start less on the way to
RUNNING). It writes the rank files every rank shares (``node-<r>.txt`` with each rank's
node, ...), then runs each rank as a step of its own (``srun`` per rank, one rank per task
slot of the allocation, in Slurm's block order) and waits for them. The first rank to fail has the
others stopped (SIGTERM to their steps, SIGKILL after the grace), as on the local backend.
The launcher's exit status is the first failing rank's (0 when all succeeded).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from jobyard.runtime.local import mounts
from jobyard.runtime.ranks import RankInfo
from jobyard.runtime.slurm.launch import LAUNCH_FILE, STEP_LOG, STOP_MARK, SlurmLaunch
from jobyard.runtime.slurm.step import NODES_ENV

_TASKS = re.compile(r"(\d+)(?:\(x(\d+)\))?")


def hostnames(nodelist: str) -> list[str]:
    """``vm[1-3]`` -> ``[vm1, vm2, vm3]`` (scontrol knows Slurm's host list syntax)."""
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return out.stdout.split()


def placement(nodes: list[str], tasks_per_node: str, replicas: int) -> list[str]:
    """Each rank's node: ``SLURM_TASKS_PER_NODE`` (``2(x3),1``) in block order."""
    counts: list[int] = []
    for part in tasks_per_node.split(","):
        match = _TASKS.fullmatch(part.strip())
        if match:
            counts += [int(match.group(1))] * int(match.group(2) or 1)
    ranks = [node for node, count in zip(nodes, counts, strict=False) for _ in range(count)]
    return (ranks or [os.uname().nodename] * replicas)[:replicas]


def step_argv(state_dir: Path, rank: int) -> list[str]:
    return [sys.executable, "-m", "jobyard.runtime.slurm.step", str(state_dir), str(rank)]


def srun_argv(state_dir: Path, rank: int, node: str) -> list[str]:
    log = SlurmLaunch.rank_dir_of(state_dir, rank) / STEP_LOG
    return ["srun", "--overlap", "--nodes=1", "--ntasks=1", f"--nodelist={node}",
            f"--output={log}", "--open-mode=append", "--export=ALL", "--kill-on-bad-exit=0",
            *step_argv(state_dir, rank)]  # fmt: skip


def run_ranks(state_dir: Path, nodes: list[str]) -> int:
    procs = [subprocess.Popen(srun_argv(state_dir, rank, node)) for rank, node in enumerate(nodes)]
    first = 0
    while procs:
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        done = [p for p in procs if p.pid == pid]
        procs = [p for p in procs if p.pid != pid]
        if done and code != 0 and first == 0:
            first = code if code > 0 else 128 - code
            if not (state_dir / STOP_MARK).exists():
                stop_others()
    return first


def stop_others() -> None:
    """SIGTERM to every step of the job (not the batch step: this launcher): each ends
    its rank as a stop does (SIGTERM, the grace, SIGKILL) and records how it ended. srun
    is never killed: that would kill its step before the step records anything."""
    job = os.environ.get("SLURM_JOB_ID", "")
    if job:
        subprocess.run(["scancel", "--signal=TERM", job], check=False)


def main(argv: list[str]) -> int:
    state_dir = Path(argv[1])
    launch = SlurmLaunch.read(state_dir / LAUNCH_FILE)
    nodes = hostnames(os.environ.get("SLURM_JOB_NODELIST", "")) or [os.uname().nodename]
    ranks = placement(nodes, os.environ.get("SLURM_TASKS_PER_NODE", ""), launch.replicas)
    mounts.write_shared_info(state_dir, RankInfo(launch.info_job_id, launch.replicas, launch.cores,
                                                 tuple(ranks)))  # fmt: skip
    os.environ[NODES_ENV] = ",".join(ranks)
    # A stop's SIGTERM reaches this batch step too: outlive it, so that every rank's step
    # (which has it as well) can record its end before the allocation ends.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    return run_ranks(state_dir, ranks)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
