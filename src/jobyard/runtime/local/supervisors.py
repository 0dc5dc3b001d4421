"""The supervisors (``shim.sh``) of a job's ranks, as the job's handle names them.

The handle is ``"<pid>:<ticks>[,<pid>:<ticks>...]:<state dir>"``: one ``pid:ticks`` per rank,
in rank order (the start time, in clock ticks after boot, guards against pid reuse), then the
state dir, which says where each rank's exit status will be after a server restart. A
one-rank handle reads exactly as the handles of servers that had no replicas, so the jobs
they started are still adopted.

Rank 0 keeps its files in the state dir itself (as jobs always did), rank r>0 in
``<state dir>/rank-<r>``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from jobyard.domain.errors import InvalidArgument
from jobyard.runtime.base import Handle

# The state dir is absolute, so the first "/" after the digits starts it.
_HANDLE = re.compile(r"(\d+:\d+(?:,\d+:\d+)*):(/.*)", re.DOTALL)


def rank_dir(state_dir: Path, rank: int) -> Path:
    """Where rank ``rank`` keeps its supervisor's files (exit status, fstab, log)."""
    return state_dir if rank == 0 else state_dir / f"rank-{rank}"


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: the process start time, in clock ticks after boot."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(data[data.rindex(b")") + 2 :].split()[19])


@dataclasses.dataclass(frozen=True, slots=True)
class Supervisor:
    """The supervisor of one rank."""

    pid: int
    start_ticks: int

    def open(self) -> int | None:
        """A pidfd on the supervisor while it is the process we started, else None."""
        if start_ticks(self.pid) != self.start_ticks:
            return None
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return None
        if start_ticks(self.pid) != self.start_ticks:  # reused between check and open
            os.close(pidfd)
            return None
        return pidfd


@dataclasses.dataclass(frozen=True, slots=True)
class Supervisors:
    """Every rank's supervisor (index = rank) and the job's state dir."""

    ranks: tuple[Supervisor, ...]
    state_dir: Path

    @classmethod
    def parse(cls, handle: Handle) -> Supervisors:
        match = _HANDLE.fullmatch(handle.backend_id)
        if match is None:
            raise InvalidArgument(f"not a local runtime handle: {handle.backend_id!r}")
        pairs = (pair.split(":") for pair in match.group(1).split(","))
        ranks = tuple(Supervisor(int(pid), int(ticks)) for pid, ticks in pairs)
        return cls(ranks, Path(match.group(2)))

    @property
    def handle(self) -> Handle:
        ranks = ",".join(f"{s.pid}:{s.start_ticks}" for s in self.ranks)
        return Handle(f"{ranks}:{self.state_dir}")

    def rank_dir(self, rank: int) -> Path:
        return rank_dir(self.state_dir, rank)

    def started_at(self) -> datetime:
        """When rank 0's supervisor started (from its start ticks and the boot time)."""
        return datetime.fromtimestamp(
            boot_time() + self.ranks[0].start_ticks / os.sysconf("SC_CLK_TCK"), UTC
        )


def boot_time() -> float:
    """The boot time of this host, in seconds since the epoch (/proc/stat ``btime``)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")
