"""Replicas: what each rank of a job is told about the others, and how their ends combine.

A job with ``replicas`` N runs its command N times, as ranks 0..N-1 of one job (UCloud's
multi-replica jobs). Each rank finds what UCloud mounts at ``/etc/ucloud``, under
:data:`INFO_DIR` instead (``/etc`` is the host's, shared and not ours to write), and the same
facts as ``JOBYARD_*`` environment variables:

- ``rank.txt`` / ``JOBYARD_RANK``: this rank, 0-based;
- ``number_of_nodes.txt`` / ``JOBYARD_NUMBER_OF_NODES``: N;
- ``cores.txt`` / ``JOBYARD_CORES``: whole cores for this rank (see :func:`cores`);
- ``job_id.txt`` / ``JOBYARD_JOB_ID``: the job's id;
- ``node-0.txt`` .. ``node-<N-1>.txt`` / ``JOBYARD_NODES``: each rank's address (the
  variable lists all of them, comma-separated, in rank order).

On the local backend every rank runs on this host, so every address is
:data:`NODE_ADDRESS` (127.0.0.1): it
reaches a rank's listening sockets on the host network and on a job's own loopback alike
(``--network none`` gives all ranks of a job one network namespace). A single-replica job
gets the same, as rank 0 of 1, so programs need not special-case it.

Nothing here runs processes: runtimes call it, and the engine never needs to know ranks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from jobyard.domain.jobs import Resources, cpu_ranges
from jobyard.runtime.base import ExitInfo

INFO_DIR = "/run/jobyard"  # where a rank finds its files, inside the job
NODE_ADDRESS = "127.0.0.1"
RANK_FILE = "rank.txt"


def cores(resources: Resources, replicas: int, host_cpus: int) -> int:
    """Whole cores each rank may count on: the job's CPU allowance shared by its ranks.

    The allowance is the smallest of the host's CPUs, the cpuset's size and the CPU quota
    rounded up (``maxCPU`` 150 % = 2 cores); all ranks draw on it, so each gets an equal
    share, at least 1 (a program sizing its threads by it does not oversubscribe the job).
    """
    allowance = host_cpus
    if resources.cpu_cores:
        allowance = min(allowance, sum(last - first + 1 for first, last in
                                       cpu_ranges(resources.cpu_cores)))  # fmt: skip
    if resources.max_cpu:
        allowance = min(allowance, math.ceil(resources.max_cpu / 100))
    return max(1, allowance // replicas)


@dataclasses.dataclass(frozen=True, slots=True)
class RankInfo:
    """The facts every rank of one job is given, as files and as environment variables."""

    job_id: str
    replicas: int
    cores: int
    # Each rank's node (index = rank), e.g. the hostnames of a Slurm allocation; () = every
    # rank on this host, at NODE_ADDRESS.
    nodes: tuple[str, ...] = ()

    def node(self, rank: int) -> str:
        return self.nodes[rank] if self.nodes else NODE_ADDRESS

    def shared_files(self) -> dict[str, str]:
        """The files that are the same for every rank (``rank.txt`` is per rank)."""
        files = {
            "number_of_nodes.txt": f"{self.replicas}\n",
            "cores.txt": f"{self.cores}\n",
            "job_id.txt": f"{self.job_id}\n",
        }
        files |= {f"node-{rank}.txt": f"{self.node(rank)}\n" for rank in range(self.replicas)}
        return files

    @staticmethod
    def rank_file(rank: int) -> str:
        return f"{rank}\n"

    def environment(self, rank: int) -> dict[str, str]:
        return {
            "JOBYARD_JOB_ID": self.job_id,
            "JOBYARD_RANK": str(rank),
            "JOBYARD_NUMBER_OF_NODES": str(self.replicas),
            "JOBYARD_CORES": str(self.cores),
            "JOBYARD_NODES": ",".join(self.node(r) for r in range(self.replicas)),
        }


def failed(info: ExitInfo) -> bool:
    """Whether this end of one rank fails the job."""
    return info.lost or info.launch_failed or info.exit_code != 0


def first_failure(ends: Mapping[int, ExitInfo]) -> int | None:
    """The rank that failed first among ``ends`` (rank -> end): earliest end, then lowest
    rank; a rank with no recorded end (lost) after every rank whose end is known."""

    def order(rank: int) -> tuple[bool, float, int]:
        when = ends[rank].ended_at
        return (when is None, when.timestamp() if when else 0.0, rank)

    return min((rank for rank, info in ends.items() if failed(info)), key=order, default=None)


def combine_exits(
    ranks: Sequence[ExitInfo], *, oom_killed: bool = False, first: int | None = None
) -> ExitInfo:
    """The job's end from its ranks' ends (index = rank), once every rank has ended.

    The job succeeds when every rank does. Otherwise it fails as its first failing rank:
    ``first`` when the runtime saw it fail before the others (end times are too coarse to
    tell ranks that a failure had stopped from the failure itself), else by
    :func:`first_failure`. The job takes that rank's exit code, signal and kind of failure,
    with a message naming it ("rank 2 failed: exit code 3"). ``oom_killed`` is the job's
    (ranks share its memory limit). A single rank's end is the job's end, message untouched.
    """
    if len(ranks) == 1:
        return dataclasses.replace(ranks[0], oom_killed=ranks[0].oom_killed or oom_killed)
    ends = [info.ended_at for info in ranks if info.ended_at is not None]
    last_end = max(ends) if ends else None
    if first is None or not failed(ranks[first]):
        first = first_failure(dict(enumerate(ranks)))
    if first is None:
        return ExitInfo(exit_code=0, oom_killed=oom_killed, ended_at=last_end)
    info = ranks[first]
    message = f"rank {first} failed: {_describe(info, oom_killed)}"
    return dataclasses.replace(info, oom_killed=oom_killed, ended_at=last_end, message=message)


def _describe(info: ExitInfo, oom_killed: bool) -> str:
    if info.lost or info.launch_failed:
        return info.message or ("lost" if info.lost else "launch failed")
    if oom_killed:
        return "killed: out of memory"
    if info.signal:
        return f"killed by signal {info.signal}"
    return f"exit code {info.exit_code}"


__all__ = [
    "INFO_DIR",
    "NODE_ADDRESS",
    "RankInfo",
    "combine_exits",
    "cores",
    "failed",
    "first_failure",
]
