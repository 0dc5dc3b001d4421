"""The Runtime port: how the engine starts, watches and stops jobs on one backend.

Each adapter is one backend of the engine's registry (``local``, ``slurm``), named by
``Runtime.name``; a job records the backend it runs on. Shaped for both a local process
runtime and a batch system (Slurm): ``start`` returns as soon as the backend has accepted the
job and hands back a :class:`Handle` (an external id the engine stores); ``running`` reports
when the job's processes really started (a batch system queues first: the engine marks a job
RUNNING only then); ``wait`` reports the end of a job given only that handle, so both also
serve to adopt jobs after a server restart; control verbs act by handle. What a backend can
run, and how much at once, is its :class:`~jobyard.runtime.capacity.Capacity`.

A job of ``spec.replicas`` N is N ranks behind one handle: ``wait`` returns once every rank
has ended, with their ends combined (:func:`jobyard.runtime.ranks.combine_exits`), and every
control verb acts on all of them. The engine never needs to know ranks.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Protocol

from jobyard.domain.errors import LaunchError
from jobyard.domain.jobs import RANK_JOB_ID_LABEL, JobSpec, Usage
from jobyard.domain.status import TerminationReason
from jobyard.runtime.capacity import Capacity

__all__ = ["Bind", "ExitInfo", "Handle", "LaunchRequest", "Runtime", "Usage"]


@dataclasses.dataclass(frozen=True, slots=True)
class Bind:
    """A host directory bound into the job at ``target`` (a volume, a runtime)."""

    source: Path
    target: str
    read_only: bool


@dataclasses.dataclass(frozen=True, slots=True)
class LaunchRequest:
    job_id: str
    spec: JobSpec
    output_path: Path  # rank 0's stdout and stderr, merged, appended in the order written
    state_dir: Path  # runtime-private files that must outlive the server (exit status, ...)
    workdir: Path  # the job's working directory (created by the runtime, owned by the job user)
    # The outputs of ranks 1..replicas-1, in rank order: each rank writes its own file.
    rank_outputs: tuple[Path, ...] = ()
    owner: str = ""  # who submitted it: a runtime may run an owner's jobs as its account
    binds: tuple[Bind, ...] = ()  # in mount order
    path_prefix: tuple[str, ...] = ()  # directories (in the job) put first on its PATH
    netns: str = ""  # a network namespace prepared for the job (its ranks enter it)

    @property
    def rank_job_id(self) -> str:
        """The id the ranks read in ``job_id.txt``: the one the job was created under on
        its face (UCloud/Core's id, label :data:`RANK_JOB_ID_LABEL`), else jobyard's."""
        return self.spec.labels.get(RANK_JOB_ID_LABEL) or self.job_id

    def output(self, rank: int) -> Path:
        """Where rank ``rank`` writes its stdout and stderr."""
        if rank == 0:
            return self.output_path
        if not 0 < rank <= len(self.rank_outputs):
            raise LaunchError(f"cannot start rank {rank}: no output file was given for it")
        return self.rank_outputs[rank - 1]


@dataclasses.dataclass(frozen=True, slots=True)
class Handle:
    """What the engine stores to find a job again, e.g. after a server restart."""

    backend_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a job ended, as far as the runtime knows."""

    exit_code: int | None  # None when unknown (lost)
    signal: int | None = None  # the signal that ended the job's main process, if any
    oom_killed: bool = False
    lost: bool = False  # the runtime no longer knows the job and no exit was recorded
    launch_failed: bool = False  # setup failed after start() returned (message says why)
    # The backend itself stopped the job (e.g. Slurm's own time limit, or a cancel from
    # outside jobyard): the job is STOPPED with this reason.
    stopped: TerminationReason | None = None
    ended_at: datetime | None = None  # when recorded by the backend (else: now)
    message: str = ""


class Runtime(Protocol):
    name: str  # the backend's name in the engine's registry ("local", "slurm")
    # True when start() hands the job to a queue of the backend's own (a batch system): the
    # job waits there as QUEUED, and running() returns once it has started. False when the
    # job's processes run by the time start() returns.
    queues: bool
    capacity: Capacity  # checked at submit, and by admission, for jobs of this backend

    async def start(self, request: LaunchRequest) -> Handle:
        """Start the job with its limits applied before the command runs.

        Raises :class:`jobyard.domain.errors.LaunchError` when any part of the setup fails;
        nothing of the job is left running then.
        """
        ...

    async def running(self, job_id: str, handle: Handle) -> datetime | None:
        """Return when the job's processes started (also for a job an earlier server
        started), or None when the job ended before it ever ran (e.g. cancelled while it
        waited in the backend's queue; :meth:`wait` then tells how)."""
        ...

    async def wait(self, job_id: str, handle: Handle) -> ExitInfo:
        """Return when the job has ended (works for jobs started by an earlier server)."""
        ...

    async def stop(self, job_id: str, handle: Handle, grace_seconds: float) -> None:
        """Signal every process of the job: SIGTERM, then SIGKILL after the grace period.

        The end itself is reported by :meth:`wait`.
        """
        ...

    async def suspend(self, job_id: str, handle: Handle) -> None: ...

    async def extend(self, job_id: str, handle: Handle, time_limit_seconds: float) -> None:
        """The job's time limit is now ``time_limit_seconds``: move the backend's own limit
        (a batch system's), if it keeps one. The engine enforces the limit itself."""
        ...

    async def resume(self, job_id: str, handle: Handle) -> None: ...

    async def usage(self, job_id: str, handle: Handle) -> Usage: ...

    async def close(self) -> None:
        """Release what the runtime itself holds (pollers, ...); jobs keep running."""
        ...

    async def cleanup(self, job_id: str, handle: Handle) -> None:
        """Release what the job held (cgroups, ...) once it has ended. Idempotent.

        ``handle`` is empty for a launch that was never recorded (the server died between
        ``start`` and storing the handle): release whatever is found by ``job_id``, ending
        any process of the job that is still there.
        """
        ...
