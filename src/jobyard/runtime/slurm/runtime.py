"""SlurmRuntime: jobs handed to a Slurm cluster, isolated inside the allocation.

``start`` writes the job's launch file and batch script into its state dir (on a file
system every node shares) and submits it with ``sbatch``: the job waits in Slurm's queue
(QUEUED). Inside the allocation the launcher (:mod:`.launcher`) runs each rank as a step
(:mod:`.step`): namespaces, private mounts, the job user, output straight into the rank's
output file. The steps report through files in the state dir: ``started`` once a rank's
command was spawned (the job is RUNNING then, not when Slurm allocated it), ``exit`` (and
``oom``) when it ended. The runtime polls those files every few milliseconds up to
:data:`FILE_POLL_MAX_SECONDS` (inotify does not see another node's writes), and asks Slurm
(one shared ``scontrol`` poll, :class:`~.tools.SlurmStates`) for what no file tells: a
cancel while queued, a node failure, Slurm's own time limit.

The handle is the Slurm job id: a restarted server adopts the job by it, and a job that
ended meanwhile gets its true end from its files (or from Slurm when no rank recorded one).

Control maps onto Slurm's own verbs: stop = ``scancel --signal=TERM --full``, the grace,
then ``--signal=KILL``; suspend/resume = ``scontrol suspend|resume``; extend moves Slurm's
``TimeLimit`` with ``scontrol update``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

from jobyard.domain.errors import FailedPrecondition, LaunchError
from jobyard.domain.jobs import Usage
from jobyard.logs import JobLayout
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest
from jobyard.runtime.capacity import Capacity
from jobyard.runtime.local.mounts import JobView
from jobyard.runtime.local.runtime import LAUNCH_FAILED_EXIT_CODE
from jobyard.runtime.local.users import JobIds, UidPolicy
from jobyard.runtime.ranks import combine_exits, cores
from jobyard.runtime.slurm import launch as files
from jobyard.runtime.slurm.launch import SbatchOptions, SlurmLaunch, sbatch_argv, slurm_time
from jobyard.runtime.slurm.states import SlurmJob
from jobyard.runtime.slurm.tools import SlurmError, SlurmStates, SlurmTools
from jobyard.runtime.slurm.watch import StateWatch, woken

log = logging.getLogger("jobyard.runtime.slurm")

FILE_POLL_MIN_SECONDS = 0.005
# How stale a rank's start or end may be, at most, when written on another node (this
# node's writes wake the runtime at once: StateWatch).
FILE_POLL_MAX_SECONDS = 0.1
SLURM_POLL_SECONDS = 1.0  # the fallback of truth: Slurm's own view of every watched job
ENDED_FILES_GRACE_SECONDS = 2.0  # Slurm says ended: how long ranks' files may still lag
CLEANUP_TIMEOUT_SECONDS = 10.0  # how long a finished job's allocation may take to end


@dataclasses.dataclass(frozen=True, slots=True)
class SlurmRuntimeConfig:
    """Where jobs go (partition, account, qos), as whom, and with which tools."""

    uids: UidPolicy  # who each job runs as: the local runtime's policy (a uid of its own)
    options: SbatchOptions = dataclasses.field(default_factory=SbatchOptions)
    shared_dir: Path | None = None  # every job's state dir must be under it
    python: str = sys.executable  # jobyard's interpreter on the nodes
    tools_dir: str = ""
    hidden: tuple[Path, ...] = ()  # host paths no job sees (the data dir, the certificates)
    stop_grace_seconds: float = 0.1  # a failed rank's peers: SIGTERM, this grace, SIGKILL
    capacity: Capacity = dataclasses.field(
        default_factory=lambda: Capacity(max_jobs=1000, cpus=4096, what="slurm")
    )


class SlurmRuntime:
    """The ``slurm`` backend (see the module docstring)."""

    name = "slurm"
    queues = True

    def __init__(
        self, config: SlurmRuntimeConfig, layout: JobLayout, tools: SlurmTools | None = None
    ) -> None:
        self._config = config
        self._layout = layout  # where a job's files are, also for jobs of an earlier server
        self.tools = tools or SlurmTools.find(config.tools_dir)
        self.capacity = config.capacity
        self.states = SlurmStates(self.tools, SLURM_POLL_SECONDS)
        self._chain_tools = files.ChainTools.find()
        self._watch = StateWatch()  # same-node writes of the steps' files, at once

    # -- start ----------------------------------------------------------------------

    async def start(self, request: LaunchRequest) -> Handle:
        self._check_shared(request)
        ids = self._config.uids.acquire(request.job_id, request.owner)
        try:
            self._prepare(request, ids)
            out = await self.tools.run(*sbatch_argv(self.tools.sbatch, request,
                                                    self._config.options))  # fmt: skip
            slurm_id = out.strip().split(";")[0]
            if not slurm_id.isdigit():
                raise LaunchError(f"sbatch answered no job id: {out.strip()!r}")
        except BaseException as exc:
            self._config.uids.release(request.job_id)
            if isinstance(exc, OSError | SlurmError):
                raise LaunchError(f"cannot hand the job to Slurm: {exc}") from exc
            raise
        log.info("job submitted to slurm | jobId=%s slurmJobId=%s", request.job_id, slurm_id)
        return Handle(slurm_id)

    def _check_shared(self, request: LaunchRequest) -> None:
        shared = self._config.shared_dir
        for path in (
            request.state_dir,
            request.workdir,
            *map(request.output, range(request.spec.replicas)),
        ):
            if not path.is_absolute() or (shared is not None and shared not in path.parents):
                raise LaunchError(f"{path} is not under the shared directory {shared}")

    def _prepare(self, request: LaunchRequest, ids: JobIds) -> None:
        config, state = self._config, request.state_dir
        owned = [(state, 0, 0, 0o700), (state / files.SLURM_SUBDIR, 0, 0, 0o700),
                 (request.workdir, ids.uid, ids.gid, 0o700)]  # fmt: skip
        owned += [(files.SlurmLaunch.rank_dir_of(state, r), 0, 0, 0o700)
                  for r in range(1, request.spec.replicas)]  # fmt: skip
        for path, uid, gid, mode in owned:
            path.mkdir(mode=mode, parents=True, exist_ok=True)
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise LaunchError(f"cannot prepare the job: {path} is not a directory")
            os.chown(path, uid, gid)
            path.chmod(mode)
        for rank in range(request.spec.replicas):
            rank_dir = files.SlurmLaunch.rank_dir_of(state, rank)
            for name in (files.STARTED_FILE, files.EXIT_FILE, files.OOM_FILE, files.DONE_FILE,
                         files.STOP_MARK, "ranks-stop", "launch-error", "shim.log"):  # fmt: skip
                (rank_dir / name).unlink(missing_ok=True)
        share = cores(request.spec.resources, request.spec.replicas, config.capacity.cpus)
        view = JobView(ids.uid, ids.gid, config.hidden)
        launch = files.prepare_ranks(request, ids, share, config.stop_grace_seconds, view,
                                     self._chain_tools)  # fmt: skip
        launch.write(state / files.LAUNCH_FILE)
        script = state / files.SLURM_SUBDIR / files.BATCH_SCRIPT
        script.write_text(files.batch_script(config.python, state, request.spec.replicas))
        script.chmod(0o700)

    # -- running and ended ------------------------------------------------------------

    def _state_dir(self, job_id: str) -> Path:
        return self._layout.state_dir(job_id)

    async def running(self, job_id: str, handle: Handle) -> datetime | None:
        rank0 = files.SlurmLaunch.rank_dir_of(self._state_dir(job_id), 0)
        started = rank0 / files.STARTED_FILE
        check = asyncio.create_task(self._ended_in_slurm(handle.backend_id))
        delay = FILE_POLL_MIN_SECONDS
        try:
            with self._watch.watching([rank0]) as changed:
                while True:
                    when = _read_time(started)
                    if when is not None:
                        return when
                    if check.done():
                        if check.result() is not None:  # ended: a last look at the file
                            return _read_time(started)
                        check = asyncio.create_task(self._ended_in_slurm(handle.backend_id))
                    await woken(changed, delay)
                    delay = min(delay * 2, FILE_POLL_MAX_SECONDS)
        finally:
            await _cancelled(check)

    async def _ended_in_slurm(self, slurm_id: str) -> SlurmJob | None:
        """Slurm's view after the next poll, when it says the job ended (else None)."""
        job = await self.states.next(slurm_id)
        if job is None:
            return await self._forgotten(slurm_id)
        return job if job.ended else None

    async def _forgotten(self, slurm_id: str) -> SlurmJob | None:
        """A job scontrol no longer lists: accounting's view, or a lost one."""
        job = await self.tools.accounted(slurm_id)
        if job is not None:
            return job
        known = await self.tools.show_jobs(slurm_id)  # the shared poll may be stale
        if slurm_id in known:
            job = known[slurm_id]
            return job if job.ended else None
        return SlurmJob(slurm_id, "LOST", "unknown to Slurm")

    async def wait(self, job_id: str, handle: Handle) -> ExitInfo:
        state, replicas = self._state_dir(job_id), self._replicas(job_id)
        check = asyncio.create_task(self._ended_in_slurm(handle.backend_id))
        delay, ended_at = FILE_POLL_MIN_SECONDS, None
        loop = asyncio.get_running_loop()
        rank_dirs = [files.SlurmLaunch.rank_dir_of(state, r) for r in range(replicas)]
        try:
            with self._watch.watching(rank_dirs) as changed:
                while True:
                    ends = [_rank_end(state, rank) for rank in range(replicas)]
                    if all(end is not None for end in ends):
                        return self._combined(state, [e for e in ends if e is not None])
                    if check.done():
                        slurm_job = check.result()
                        if slurm_job is not None:
                            ended_at = ended_at or loop.time()
                            waited = loop.time() - ended_at
                            if _no_more_files(state) or waited > ENDED_FILES_GRACE_SECONDS:
                                return slurm_job.exit_info()
                        check = asyncio.create_task(self._ended_in_slurm(handle.backend_id))
                    await woken(changed, delay)
                    delay = min(delay * 2, FILE_POLL_MAX_SECONDS)
        finally:
            await _cancelled(check)

    def _replicas(self, job_id: str) -> int:
        try:
            return SlurmLaunch.read(self._state_dir(job_id) / files.LAUNCH_FILE).replicas
        except (OSError, ValueError, KeyError):
            count = 1  # launch file gone (cleaned up): count the rank dirs instead
            while files.SlurmLaunch.rank_dir_of(self._state_dir(job_id), count).is_dir():
                count += 1
            return count

    @staticmethod
    def _combined(state: Path, ends: list[ExitInfo]) -> ExitInfo:
        oom = any((files.SlurmLaunch.rank_dir_of(state, r) / files.OOM_FILE).exists()
                  for r in range(len(ends)))  # fmt: skip
        return combine_exits(ends, oom_killed=oom)

    # -- control --------------------------------------------------------------------

    async def stop(self, job_id: str, handle: Handle, grace_seconds: float) -> None:
        slurm_id = handle.backend_id
        with contextlib.suppress(OSError):
            (self._state_dir(job_id) / files.STOP_MARK).touch()
        if not _started(self._state_dir(job_id)):
            # Still in Slurm's queue (or its step not yet up): a plain cancel. A signal to a
            # pending job is retried by scancel for minutes ("Job can not be altered now").
            await self._scancel(slurm_id)
            self.states.poke()
            log.info("job cancelled in the queue | jobId=%s slurmJobId=%s", job_id, slurm_id)
            return
        with contextlib.suppress(SlurmError):  # a suspended job can neither handle nor die
            await self.tools.run(self.tools.scontrol, "resume", slurm_id)
        await self._scancel("--signal=TERM", "--full", slurm_id)
        if grace_seconds > 0:
            await asyncio.sleep(grace_seconds)
        await self._scancel("--signal=KILL", "--full", slurm_id)
        await self._scancel(slurm_id)  # a pending job, and the allocation itself
        self.states.poke()
        log.info("job stopped | jobId=%s slurmJobId=%s", job_id, slurm_id)

    async def _scancel(self, *argv: str) -> None:
        try:
            await self.tools.run(self.tools.scancel, *argv)
        except SlurmError as exc:
            if "already completing or completed" not in str(exc) and "Invalid job id" not in str(
                exc
            ):
                raise

    async def suspend(self, job_id: str, handle: Handle) -> None:
        await self._control("suspend", handle.backend_id)

    async def resume(self, job_id: str, handle: Handle) -> None:
        await self._control("resume", handle.backend_id)

    async def _control(self, verb: str, slurm_id: str) -> None:
        try:
            await self.tools.run(self.tools.scontrol, verb, slurm_id)
        except SlurmError as exc:
            raise FailedPrecondition(f"cannot {verb} Slurm job {slurm_id}: {exc}") from exc

    async def extend(self, job_id: str, handle: Handle, time_limit_seconds: float) -> None:
        """Move Slurm's limit to the job's new one (plus the margin jobyard keeps)."""
        limit = slurm_time(time_limit_seconds + files.TIME_LIMIT_MARGIN_SECONDS)
        try:
            await self.tools.run(self.tools.scontrol, "update", f"JobId={handle.backend_id}",
                                 f"TimeLimit={limit}")  # fmt: skip
        except SlurmError as exc:
            raise FailedPrecondition(f"cannot extend Slurm job {handle.backend_id}: {exc}") from exc

    async def usage(self, job_id: str, handle: Handle) -> Usage:
        # TODO: read sstat (running) / sacct (ended) for CPU time and peak memory.
        return Usage()

    async def cleanup(self, job_id: str, handle: Handle) -> None:
        """Wait until Slurm, too, has ended the job (its ranks' files tell first), so that a
        terminal job holds nothing of the cluster; then remove the launch file (it holds
        the secret environment). An unrecorded launch (no handle) is cancelled by name."""
        if not handle.backend_id:
            with contextlib.suppress(SlurmError):
                await self.tools.run(self.tools.scancel, f"--name={files.JOB_NAME_PREFIX}{job_id}")
        else:
            await self._until_ended(handle.backend_id)
        (self._state_dir(job_id) / files.LAUNCH_FILE).unlink(missing_ok=True)
        self._config.uids.release(job_id)  # the job's uid is free once Slurm ended it

    async def _until_ended(self, slurm_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLEANUP_TIMEOUT_SECONDS
        while loop.time() < deadline:
            self.states.poke()  # its launcher is ending now: ask at once, not in a second
            job = await self.states.next(slurm_id)
            if job is None or job.ended:
                return
        log.warning("slurm job still not ended | slurmJobId=%s", slurm_id)

    async def close(self) -> None:
        await self.states.close()
        self._watch.close()


async def _cancelled(task: asyncio.Task[SlurmJob | None]) -> None:
    """Cancel a poll task and let it finish (its tool process is ended and reaped)."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _read_time(path: Path) -> datetime | None:
    """A time the step wrote (seconds since the epoch)."""
    try:
        return datetime.fromtimestamp(float(path.read_text().strip()), UTC)
    except (OSError, ValueError):
        return None


def _started(state: Path) -> bool:
    return (files.SlurmLaunch.rank_dir_of(state, 0) / files.STARTED_FILE).exists()


def _no_more_files(state: Path) -> bool:
    """Slurm says the job ended and no rank's file will come: it never ran, or a stop
    killed its steps (which then record nothing)."""
    rank0 = files.SlurmLaunch.rank_dir_of(state, 0)
    return not (rank0 / files.STARTED_FILE).exists() or (state / files.STOP_MARK).exists()


def _rank_end(state: Path, rank: int) -> ExitInfo | None:
    """A rank's end from its ``exit`` file, once its step said ``done`` (else None)."""
    rank_dir = files.SlurmLaunch.rank_dir_of(state, rank)
    path = rank_dir / files.EXIT_FILE
    try:
        if not (rank_dir / files.DONE_FILE).exists():
            return None
        code = int(path.read_text().strip())
        ended_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (OSError, ValueError):
        return None
    reason = _last_line(rank_dir / "launch-error")
    if code == LAUNCH_FAILED_EXIT_CODE and reason:
        message = f"launch failed: {reason}"
        return ExitInfo(exit_code=code, launch_failed=True, ended_at=ended_at, message=message)
    signum = code - 128 if code > 128 else None
    return ExitInfo(exit_code=code, signal=signum, ended_at=ended_at)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


__all__ = ["SlurmRuntime", "SlurmRuntimeConfig"]
