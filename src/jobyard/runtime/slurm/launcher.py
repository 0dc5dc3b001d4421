"""The batch script's one process for jobs of several ranks (stdlib only, ``python -S``):
``python -S launcher.py STATE``.

Runs as root on the allocation's first node (a one-rank job's batch script runs its step
directly). It writes each rank's node into the rank files every rank shares
(``node-<r>.txt``), then runs each rank as a step of its own (``srun`` per rank, one rank
per task slot of the allocation, in Slurm's block order) and waits for them. The first rank
to fail has the others stopped (SIGTERM, SIGKILL after the grace, by their steps), as on
the local backend. The exit status is the first failing rank's (0 when all succeeded).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from typing import Any

try:
    from jobyard.runtime.slurm.step import NODES_ENV, RANKS_STOP, write_node_files
except ImportError:  # run as a script, without site packages: the step script is beside it
    from step import (  # type: ignore[import-not-found,no-redef]
        NODES_ENV,
        RANKS_STOP,
        write_node_files,
    )

_TASKS = re.compile(r"(\d+)(?:\(x(\d+)\))?")


def hostnames(nodelist: str) -> list[str]:
    """``vm[1-3]`` -> ``[vm1, vm2, vm3]`` (scontrol knows Slurm's host list syntax)."""
    if not nodelist:
        return []
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


def srun_argv(state_dir: str, rank: int, node: str, rank_dir: str) -> list[str]:
    step = os.path.join(os.path.dirname(os.path.abspath(__file__)), "step.py")
    return ["srun", "--overlap", "--nodes=1", "--ntasks=1", f"--nodelist={node}",
            f"--output={os.path.join(rank_dir, 'step.log')}", "--open-mode=append",
            "--export=ALL", "--kill-on-bad-exit=0",
            sys.executable, "-S", "-E", "-s", step, state_dir, str(rank)]  # fmt: skip


def run_ranks(state_dir: str, launch: dict[str, Any], nodes: list[str]) -> int:
    procs = [subprocess.Popen(srun_argv(state_dir, r, node, launch["ranks"][r]["dir"]))
             for r, node in enumerate(nodes)]  # fmt: skip
    first = 0
    while procs:
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        done = [p for p in procs if p.pid == pid]
        procs = [p for p in procs if p.pid != pid]
        if done and code != 0 and first == 0:
            first = code if code > 0 else 128 - code
            if not os.path.exists(os.path.join(state_dir, "stop-requested")):
                stop_others(state_dir)
    return first


def stop_others(state_dir: str) -> None:
    """Ask the other ranks' steps to stop their ranks as a stop does (SIGTERM, the grace,
    SIGKILL), through a file in the shared state dir that each step watches: a signal
    through srun or scancel cancels the step instead, and Slurm then kills it after
    KillWait before it records how its rank ended."""
    with open(os.path.join(state_dir, RANKS_STOP), "w"):
        pass


def main(argv: list[str]) -> int:
    state_dir = argv[1]
    with open(os.path.join(state_dir, "launch.json")) as f:
        launch = json.load(f)
    replicas = len(launch["ranks"])
    nodes = hostnames(os.environ.get("SLURM_JOB_NODELIST", "")) or [os.uname().nodename]
    ranks = placement(nodes, os.environ.get("SLURM_TASKS_PER_NODE", ""), replicas)
    write_node_files(state_dir, ranks)
    os.environ[NODES_ENV] = ",".join(ranks)
    # A stop's SIGTERM reaches this batch step too: outlive it, so that every rank's step
    # (which has it as well) can record its end before the allocation ends.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    return run_ranks(state_dir, launch, ranks)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
