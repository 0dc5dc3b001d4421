"""LocalRuntime: jobs as namespaced, cgroup-limited processes, each of a uid of its own.

Launch chain (no Python process stays per job, and the exit status is recorded by a
process that outlives the server)::

    server --Popen--> sh -c OPEN_STAGE      opens the rank's exit, log and launch-error
                        |                   files (fds 3-5) through the host's mount
                        `--exec--> unshare --pid --mount --ipc --uts [--net]
                                     |       (new session, fixed env, stdin = the job's env)
                                     `--exec--> sh shim.sh ...   supervisor: host pid
                                                  |              namespace, outside the
                                                  |              job's cgroups
                                                  `--fork--> sh (PID 1)   joins the job's
                                                   |   cgroups, makes the job's view of the
                                                   |   file system (mounts.py), cd /work
                                                   `--exec--> setpriv --reuid ... -- sh -c ...
                                                               `--exec--> sh: reads the env
                                                                  `--exec--> CMD (PID 1)

Each job runs as a uid of its own (:class:`~jobyard.runtime.local.users.UidPolicy`): taken
at launch, given back by :meth:`LocalRuntime.cleanup`, recorded on the host so that a
restarted server neither forgets an adopted job's uid nor hands it to another job.

Nothing that runs as root sees the job's environment (an ``LD_PRELOAD`` there would run
the job's code as root): it travels in a memfd on stdin and is read by the last shell,
after the drop to the job user.

The shim writes ``STATE_DIR/exit`` when PID 1 ends (the kernel then kills whatever else is
left in the namespace), over blanks written at launch: a full disk cannot lose the record.
:meth:`LocalRuntime.wait` watches the shim through a pidfd — also for jobs an earlier
server started — and reads that file. Stop, suspend, resume, usage and the OOM verdict act
on the job's cgroup (:mod:`jobyard.runtime.local.cgroups`), so they reach every process
of the job, double-forked or not.

Replicas: a job of N replicas is N such chains, ranks 0..N-1, each with its own supervisor,
PID, mount, IPC and UTS namespaces, output file and replica files
(:mod:`jobyard.runtime.local.mounts`). All ranks share the job's one cgroup, so its limits
(CPU, memory, pids, io) bound the job as a whole, as the engine's capacity accounting
counts it, and the freezer, kill and usage reach every rank at once. They share the work
directory, and with ``--network none`` one network namespace (rank 0's), so that ranks
reach each other on 127.0.0.1 as on the host network. The first rank to fail (non-zero
exit, signal, OOM, lost) has the others stopped as a stop would (SIGTERM, grace, SIGKILL):
a job whose rank died would otherwise hang on it until its time limit.

The handle names every rank's supervisor (:mod:`jobyard.runtime.local.supervisors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from jobyard.domain.errors import FailedPrecondition, InvalidArgument, LaunchError
from jobyard.domain.jobs import DEFAULT_MAX_PIDS, NETWORK_NONE
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest, Usage
from jobyard.runtime.capacity import Capacity, host_memory_mb
from jobyard.runtime.local import disks, mounts, workdirs
from jobyard.runtime.local.cgroups import (
    CgroupDriver,
    JobCgroup,
    Limits,
    block_device_of,
    check_name,
    detect_cgroups,
    gone,
)
from jobyard.runtime.local.processes import (
    end_lone_inits,
    ended,
    own_netns,
    readable,
    reap,
    until,
)
from jobyard.runtime.local.supervisors import Supervisor, Supervisors, rank_dir, start_ticks
from jobyard.runtime.local.users import JobIds, UidPolicy
from jobyard.runtime.local.workdirs import STOP_MARK
from jobyard.runtime.ranks import RankInfo, combine_exits, cores, first_failure

log = logging.getLogger("jobyard.runtime.local")

SHIM_SCRIPT = Path(__file__).with_name("shim.sh")
SHELL = "/bin/sh"
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
JOB_PATH = "/usr/local/bin:/usr/bin:/bin"
JOB_LANG = "C.UTF-8"
LAUNCH_FAILED_EXIT_CODE = 125  # the shim's code for "setup failed, see launch-error"
FREEZE_TIMEOUT_SECONDS = 10.0
CLEANUP_TIMEOUT_SECONDS = 5.0
STOP_POLL_SECONDS = 0.05  # longest pause between looks at a stopping job
ROOT_ENV = {"PATH": TOOL_PATH}  # all the launch chain's root stages ever see
# The unprivileged stage: read the environment script from the memfd on stdin, then run
# the command with stdin on /dev/null.
ENV_STAGE = '. /dev/stdin && exec "$@" </dev/null'
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_UID_RANGE = (200000, 265535)
DEFAULT_UID_RECORDS = Path("/run/jobyard-uids")  # a tmpfs: outlives the server, not a reboot
# The root stage of the launch chain: the rank's exit, log and launch-error files opened
# through the host's mount, before `unshare` (see shim.sh), on the fds the shim expects.
OPEN_STAGE = 'exec 3<>exit 4>>shim.log 5>launch-error && exec "$@"'


@dataclasses.dataclass(frozen=True, slots=True)
class LocalRuntimeConfig:
    """Who jobs run as, what they may not see and where their cgroups go."""

    # Each job gets a uid (and the gid of that number) of its own from this range...
    uid_range: tuple[int, int] | None = DEFAULT_UID_RANGE
    # ...unless its owner runs as a fixed user (name or number): sites mapping owners to
    # accounts; or, with owner_accounts, as the local account of the owner's name.
    fixed_uids: Mapping[str, str | int] = dataclasses.field(default_factory=dict)
    owner_accounts: bool = False
    uid_records: Path = DEFAULT_UID_RECORDS
    hidden: tuple[Path, ...] = ()  # host paths no job sees (the data dir, the certificates)
    # Host dirs under /run a job's private /run keeps read-only; None: what the host's
    # resolv.conf points into (mounts.host_run_keeps).
    run_keeps: tuple[str, ...] | None = None
    cgroup_root: str = "jobyard"  # directory name under each cgroup hierarchy
    default_max_pids: int = DEFAULT_MAX_PIDS  # for jobs that ask for no pids limit; 0 = none
    cgroup_mount: Path = Path("/sys/fs/cgroup")
    # SIGTERM to SIGKILL for the other ranks when one rank fails (the seed's stop grace).
    stop_grace_seconds: float = 0.1

    def __post_init__(self) -> None:
        if self.default_max_pids < 0:
            raise InvalidArgument("invalid defaultMaxPids: must not be negative")
        if self.stop_grace_seconds < 0:
            raise InvalidArgument("invalid stop grace: must not be negative")
        for path in self.hidden:
            if not path.is_absolute():
                raise InvalidArgument(f"invalid hidden path {path}: must be absolute")
            mounts.check_hideable(path)
        check_name(self.cgroup_root, "cgroupRoot")

    def uid_policy(self) -> UidPolicy:
        """The policy for these settings (refuses root, overlaps and shared uids)."""
        return UidPolicy(self.uid_range, self.uid_records, self.fixed_uids, self.owner_accounts)


@dataclasses.dataclass(frozen=True, slots=True)
class _Tools:
    """Absolute paths of the programs in the launch chain (never looked up in a job's PATH)."""

    unshare: str
    setpriv: str
    mount: str
    nsenter: str  # ranks 1.. of a --network none job enter rank 0's network namespace
    umount: str  # a disk-limited job's image, when its launch fails

    @classmethod
    def find(cls) -> _Tools:
        names = ("unshare", "setpriv", "mount", "nsenter", "umount")
        found = {name: shutil.which(name, path=TOOL_PATH) for name in names}
        missing = [name for name, path in found.items() if path is None]
        if missing or not os.access(SHELL, os.X_OK):
            needed = ", ".join(missing or [SHELL])
            raise FailedPrecondition(f"the local runtime needs {needed} (util-linux)")
        return cls(**{name: str(path) for name, path in found.items()})


class _DetachedPopen(subprocess.Popen[bytes]):
    """A Popen whose child is meant to outlive it.

    The shim is reaped by :meth:`LocalRuntime.wait` through a pidfd (or by init after a
    server restart). ``Popen.__del__`` would warn that it is "still running" and queue it to
    be reaped behind our back.
    """

    def __del__(self) -> None:
        pass


def _env_memfd(env: dict[str, str]) -> int:
    """A memfd holding ``env`` as a script of ``export NAME='value'`` lines, read from 0.

    Names are checked again here, since they are not quoted; values are quoted.
    """
    bad = [name for name in env if not _ENV_NAME.fullmatch(name)]
    if bad:
        raise LaunchError(f"invalid environment variable name {bad[0]!r}")
    script = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    fd = os.memfd_create("jobyard-env", os.MFD_CLOEXEC)
    try:
        data = script.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _no_processes(job_id: str) -> FailedPrecondition:
    return FailedPrecondition(f"job has no processes on this host: {job_id}")


def _freezer(job_id: str, change: Callable[[], None]) -> None:
    """Freeze or thaw; a cgroup removed meanwhile (the job ended) is a precondition failure."""
    try:
        change()
    except OSError as exc:
        if gone(exc):
            raise _no_processes(job_id) from exc
        raise


def _ended_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


class LocalRuntime:
    """Runs jobs on this host, isolated in namespaces and limited by cgroups.

    Needs root, util-linux (unshare, setpriv) and a cgroup v2 or v1 hierarchy; ``cgroups``
    overrides the detected driver. Holds no per-job state in memory: everything it needs is
    in the handle, the job's state dir and the job's cgroup, so any instance can take over.
    """

    name = "local"
    queues = False  # a started job's processes run by the time start() returns

    def __init__(
        self,
        config: LocalRuntimeConfig,
        *,
        cgroups: CgroupDriver | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        self._config = config
        # This host's CPUs and memory bound one job; how many run at once is configured.
        self.capacity = capacity or Capacity(memory_mb=host_memory_mb())
        self._tools = _Tools.find()
        self.uids = config.uid_policy()
        self.cgroups = cgroups or detect_cgroups(config.cgroup_mount, root_name=config.cgroup_root)
        self._view_hidden = config.hidden
        self._run_keeps = mounts.host_run_keeps() if config.run_keeps is None else config.run_keeps

    # -- start ----------------------------------------------------------------------

    async def start(self, request: LaunchRequest) -> Handle:
        created: list[Path] = []
        cgroup: JobCgroup | None = None
        pids: list[int] = []
        try:
            ids = self.uids.acquire(request.job_id, request.owner)
            # Directories (a disk-limited job's mkfs and mount take tens of ms), cgroup writes
            # and forks block: in a thread, so that other launches and every RPC go on.
            cgroup = await asyncio.to_thread(self._prepare, request, ids, created)
            await self._spawn_ranks(request, ids, cgroup, pids)
        except BaseException as exc:
            await self._undo_launch(request.job_id, cgroup, pids)
            if request.workdir in created:
                disks.unmount_work_disk(request.state_dir, request.workdir, self._tools.umount)
            workdirs.remove(created)
            self.uids.release(request.job_id)
            if isinstance(exc, OSError):
                raise LaunchError(f"cannot start the job: {exc}") from exc
            raise
        # Our own unreaped children always have a /proc entry, so this cannot be None.
        ranks = tuple(Supervisor(pid, start_ticks(pid) or 0) for pid in pids)
        log.info("job launched | jobId=%s shimPids=%s cgroup=v%d uid=%d", request.job_id,
                 ",".join(map(str, pids)), self.cgroups.version, ids.uid)  # fmt: skip
        return Supervisors(ranks, request.state_dir).handle

    def _prepare(self, request: LaunchRequest, ids: JobIds, created: list[Path]) -> JobCgroup:
        """The job's directories, replica files and cgroup (with its limits)."""
        workdirs.prepare(request, ids, created, self._tools.mount)
        self._write_replica_files(request, ids)
        return self.cgroups.create(request.job_id, self._limits(request))

    def _rank_info(self, request: LaunchRequest) -> RankInfo:
        spec = request.spec
        share = cores(spec.resources, spec.replicas, len(os.sched_getaffinity(0)))
        return RankInfo(request.rank_job_id, spec.replicas, share)

    def _write_replica_files(self, request: LaunchRequest, ids: JobIds) -> None:
        mounts.make_mount_points()
        mounts.write_shared_info(request.state_dir, self._rank_info(request))
        view = mounts.JobView(ids.uid, ids.gid, self._view_hidden, self._run_keeps)
        extra = [mounts.attachment(bind) for bind in request.binds]
        for rank in range(request.spec.replicas):
            rank_path = rank_dir(request.state_dir, rank)
            mounts.write_rank_mounts(request, rank, rank_path, view, extra)

    async def _undo_launch(self, job_id: str, cgroup: JobCgroup | None, pids: list[int]) -> None:
        """End the ranks already started by a launch that failed part way, and their cgroup.

        A supervisor's child that has not yet joined the cgroup is still in the supervisor's
        process group (a session of its own); whatever joined is killed through the cgroup.
        """
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if cgroup is not None:
            await self.cleanup(job_id, Handle(""))

    def _limits(self, request: LaunchRequest) -> Limits:
        resources = request.spec.resources
        device = block_device_of(request.workdir) if resources.max_iobps else ""
        return Limits.from_resources(
            resources, io_device=device, default_max_pids=self._config.default_max_pids
        )

    async def _spawn_ranks(
        self, request: LaunchRequest, ids: JobIds, cgroup: JobCgroup, pids: list[int]
    ) -> None:
        """Start every rank's supervisor, appending each pid to ``pids`` as it starts."""
        info = self._rank_info(request)
        procs_files = cgroup.procs_files()
        shared_netns: int | None = None
        for rank in range(request.spec.replicas):
            argv = self._argv(request, rank, ids, procs_files, shared_netns)
            env = self._env(request, info, rank)
            pids.append(await asyncio.to_thread(self._spawn, request, rank, argv, env))
            own = request.spec.network == NETWORK_NONE and not request.netns
            if rank == 0 and own and request.spec.replicas > 1:
                shared_netns = await own_netns(pids[0])

    def _spawn(
        self, request: LaunchRequest, rank: int, argv: list[str], env: dict[str, str]
    ) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        environment = _env_memfd(env)
        try:
            output = os.open(request.output(rank), flags, 0o640)
            try:
                shim = _DetachedPopen(
                    argv,
                    stdin=environment,
                    stdout=output,
                    stderr=output,
                    cwd=rank_dir(request.state_dir, rank),  # OPEN_STAGE's files are here
                    env=ROOT_ENV,
                    start_new_session=True,
                    close_fds=True,
                )
            finally:
                os.close(output)
        finally:
            os.close(environment)
        return shim.pid

    def _argv(
        self, request: LaunchRequest, rank: int, ids: JobIds, procs_files: list[Path],
        netns_of: int | None,
    ) -> list[str]:  # fmt: skip
        """The launch chain of one rank; ``netns_of``: the pid whose network namespace the
        rank enters (rank 0's, for the other ranks of a ``--network none`` job). A job given
        a prepared namespace (``request.netns``: a created network, isolated) enters that."""
        tools = self._tools
        netns = request.netns or ("" if netns_of is None else f"/proc/{netns_of}/ns/net")
        enter = [tools.nsenter, f"--net={netns}", "--"] if netns else []
        namespaces = ["--pid", "--mount", "--ipc", "--uts", "--propagation", "private"]
        if request.spec.network == NETWORK_NONE and not netns:
            namespaces.append("--net")  # a new, empty network namespace: only loopback
        state = rank_dir(request.state_dir, rank)
        shim = [SHELL, str(SHIM_SCRIPT), mounts.WORK_DIR,
                tools.mount, str(state / mounts.FSTAB_FILE)]  # fmt: skip
        drop = [
            tools.setpriv,
            f"--reuid={ids.uid}",
            f"--regid={ids.gid}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
        command = [SHELL, "-c", ENV_STAGE, "jobyard", request.spec.command, *request.spec.args]
        return [
            SHELL,
            "-c",
            OPEN_STAGE,
            "jobyard-open",
            *enter,
            tools.unshare,
            *namespaces,
            "--",
            *shim,
            *map(str, procs_files),
            "--",
            *drop,
            *command,
        ]

    @staticmethod
    def _env(request: LaunchRequest, info: RankInfo, rank: int) -> dict[str, str]:
        # Only what the job was given: nothing of the server's environment leaks in.
        path = ":".join((*request.path_prefix, JOB_PATH))  # a runtime's bin/ first
        env = {"PATH": path, "HOME": mounts.WORK_DIR, "LANG": JOB_LANG}
        env |= request.spec.environment
        env |= request.spec.secret_environment
        env |= info.environment(rank)  # last: a job cannot be told a wrong rank
        return env

    # -- wait -----------------------------------------------------------------------

    async def running(self, job_id: str, handle: Handle) -> datetime | None:
        """When rank 0's supervisor started: a local job runs once start() returned."""
        return Supervisors.parse(handle).started_at()

    async def wait(self, job_id: str, handle: Handle) -> ExitInfo:
        supervisors = Supervisors.parse(handle)
        ends, first = await self._rank_ends(job_id, supervisors)
        return combine_exits(ends, oom_killed=self._oom_killed(job_id), first=first)

    async def _rank_ends(
        self, job_id: str, supervisors: Supervisors
    ) -> tuple[list[ExitInfo], int | None]:
        """Each rank's end (index = rank) once every rank has ended, and the rank that
        failed first, if any.

        The first failure seen has the other ranks stopped, unless the job is being
        stopped as a whole already (their ends then are that stop's doing).

        TODO: a watched job holds one pidfd per rank, so many 256-rank jobs need a server
        RLIMIT_NOFILE above the usual 1024; watch ranks through one fd per job instead
        (e.g. a per-job reaper process that reports rank ends on a pipe).
        """
        ends: dict[int, ExitInfo] = {}
        watched: dict[int, int] = {}  # rank -> pidfd of its supervisor
        for rank, supervisor in enumerate(supervisors.ranks):
            pidfd = supervisor.open()
            if pidfd is None:  # ended while no server watched
                ends[rank] = self._rank_exit(supervisors.rank_dir(rank))
            else:
                watched[rank] = pidfd
        first: int | None = None
        try:
            while True:
                if first is None and (first := first_failure(ends)) is not None and watched:
                    await self._stop_after_failure(job_id, supervisors)
                if not watched:
                    return [ends[rank] for rank in range(len(supervisors.ranks))], first
                await readable(*watched.values())
                for rank, pidfd in list(watched.items()):
                    if ended(pidfd):
                        reap(pidfd)
                        os.close(watched.pop(rank))
                        ends[rank] = self._rank_exit(supervisors.rank_dir(rank))
        finally:
            for pidfd in watched.values():
                os.close(pidfd)

    async def _stop_after_failure(self, job_id: str, supervisors: Supervisors) -> None:
        if (supervisors.state_dir / STOP_MARK).exists():
            return
        log.info("job rank failed: stopping the other ranks | jobId=%s", job_id)
        await self._stop(job_id, supervisors, self._config.stop_grace_seconds)

    def _rank_exit(self, state_dir: Path) -> ExitInfo:
        """How one rank ended, from what its supervisor recorded in ``state_dir``."""
        exit_file = state_dir / "exit"
        try:
            code = int(exit_file.read_text().strip())
            ended_at = _ended_at(exit_file)
        except (OSError, ValueError):
            return ExitInfo(
                exit_code=None, lost=True,
                message="the job's supervisor ended without recording an exit status",
            )  # fmt: skip
        reason = _last_line(state_dir / "launch-error")  # empty unless setup failed
        if code == LAUNCH_FAILED_EXIT_CODE and reason:
            detail = _last_line(state_dir / "shim.log")
            message = f"launch failed: {reason}" + (f" ({detail})" if detail else "")
            return ExitInfo(exit_code=code, ended_at=ended_at, message=message, launch_failed=True)
        # The shell reports "killed by signal N" as 128+N.
        signum = code - 128 if code > 128 else None
        return ExitInfo(exit_code=code, signal=signum, ended_at=ended_at)

    def _oom_killed(self, job_id: str) -> bool:
        try:
            return self.cgroups.job(job_id).oom_kills() > 0
        except (OSError, ValueError):
            return False

    # -- control --------------------------------------------------------------------

    async def stop(self, job_id: str, handle: Handle, grace_seconds: float) -> None:
        await self._stop(job_id, Supervisors.parse(handle), grace_seconds)

    async def _stop(self, job_id: str, supervisors: Supervisors, grace_seconds: float) -> None:
        """SIGTERM to every process of every rank, the grace, then SIGKILL to what is left."""
        cgroup = self.cgroups.job(job_id)
        if not cgroup.exists():
            return
        with contextlib.suppress(OSError):  # the mark only spares ranks a second SIGTERM
            (supervisors.state_dir / STOP_MARK).touch()
        cgroup.signal_all(signal.SIGTERM)
        try:
            cgroup.thaw()  # a suspended job can neither handle SIGTERM nor die while frozen
        except OSError as exc:
            if not gone(exc):
                raise
        if grace_seconds > 0:
            await self._wait_ended(supervisors, cgroup, grace_seconds)
        await asyncio.to_thread(cgroup.kill_all)
        log.info("job stopped | jobId=%s", job_id)

    async def _wait_ended(
        self, supervisors: Supervisors, cgroup: JobCgroup, timeout: float
    ) -> None:
        opened = [(s.pid, s.open()) for s in supervisors.ranks]
        live = {pid: pidfd for pid, pidfd in opened if pidfd is not None}
        if not live:
            # No supervisor left to watch (they were killed): watch the cgroup empty out.
            await until(lambda: not cgroup.pids(), timeout)
            return
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + timeout, 0.001
        try:
            while live:
                end_lone_inits(list(live), cgroup)
                left = deadline - loop.time()
                if left <= 0:
                    return
                # A rank's PID 1 ending ends its namespace, and then its supervisor.
                await readable(*live.values(), timeout=min(left, delay))
                for pid, pidfd in list(live.items()):
                    if ended(pidfd):
                        os.close(live.pop(pid))
                delay = min(delay * 2, STOP_POLL_SECONDS)
        finally:
            for pidfd in live.values():
                os.close(pidfd)

    async def suspend(self, job_id: str, handle: Handle) -> None:
        cgroup = self._existing(job_id)
        _freezer(job_id, cgroup.freeze)
        if not await until(cgroup.frozen, FREEZE_TIMEOUT_SECONDS):
            with contextlib.suppress(OSError):
                cgroup.thaw()  # a job that is not SUSPENDED must not stay half frozen
            raise FailedPrecondition(
                f"job {job_id} did not freeze within {FREEZE_TIMEOUT_SECONDS:g} s"
            )

    async def close(self) -> None:
        """Nothing held: every job's state is in its handle, state dir and cgroup."""

    async def extend(self, job_id: str, handle: Handle, time_limit_seconds: float) -> None:
        """Nothing to move: the engine enforces a local job's time limit."""

    async def resume(self, job_id: str, handle: Handle) -> None:
        cgroup = self._existing(job_id)
        _freezer(job_id, cgroup.thaw)
        if not await until(lambda: not cgroup.frozen(), FREEZE_TIMEOUT_SECONDS):
            raise FailedPrecondition(
                f"job {job_id} did not thaw within {FREEZE_TIMEOUT_SECONDS:g} s"
            )

    def _existing(self, job_id: str) -> JobCgroup:
        cgroup = self.cgroups.job(job_id)
        if not cgroup.exists():
            raise _no_processes(job_id)
        return cgroup

    async def usage(self, job_id: str, handle: Handle) -> Usage:
        cgroup = self.cgroups.job(job_id)
        return cgroup.usage() if cgroup.exists() else Usage()

    async def cleanup(self, job_id: str, handle: Handle) -> None:
        cgroup = self.cgroups.job(job_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLEANUP_TIMEOUT_SECONDS
        while cgroup.exists():
            if cgroup.pids():
                await asyncio.to_thread(cgroup.kill_all)
            try:
                cgroup.remove()
            except OSError as exc:
                # EBUSY while the last processes finish exiting.
                if exc.errno != errno.EBUSY or loop.time() >= deadline:
                    log.warning("job cgroup not removed | jobId=%s error=%s", job_id, exc)
                    return  # its uid stays taken: processes of the job may still hold it
                await asyncio.sleep(0.02)
        self.uids.release(job_id)
