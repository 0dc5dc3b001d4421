"""LocalRuntime: jobs as namespaced, cgroup-limited processes of an unprivileged user.

Launch chain (no Python process stays per job, and the exit status is recorded by a
process that outlives the server)::

    server --Popen--> unshare --pid --mount --ipc --uts [--net]   (new session, fixed env,
                        |                                         stdin = the job's env)
                        `--exec--> sh shim.sh ...            supervisor: host pid namespace,
                                     |                       outside the job's cgroups
                                     `--fork--> sh (PID 1)   joins the job's cgroups, mounts
                                                  |          /proc, /dev/shm, /tmp
                                                  `--exec--> setpriv --reuid ... -- sh -c ...
                                                               `--exec--> sh: reads the env
                                                                  `--exec--> CMD (PID 1)

Nothing that runs as root sees the job's environment (an ``LD_PRELOAD`` there would run
the job's code as root): it travels in a memfd on stdin and is read by the last shell,
after the drop to the job user.

The shim writes ``STATE_DIR/exit`` when PID 1 ends (the kernel then kills whatever else is
left in the namespace). :meth:`LocalRuntime.wait` watches the shim through a pidfd — also
for jobs an earlier server started — and reads that file. Stop, suspend, resume, usage and
the OOM verdict act on the job's cgroup (:mod:`jobyard.runtime.local.cgroups`), so they reach
every process of the job, double-forked or not.

The handle is ``"<shim pid>:<shim start time in clock ticks>:<state dir>"``: the start time
guards against pid reuse, the state dir says where the exit status will be after a restart.
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
import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from jobyard.config import JobyardConfig
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, LaunchError
from jobyard.domain.jobs import DEFAULT_MAX_PIDS, NETWORK_NONE
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest, Usage
from jobyard.runtime.local.cgroups import (
    CgroupDriver,
    JobCgroup,
    Limits,
    block_device_of,
    check_name,
    detect_cgroups,
    gone,
)
from jobyard.runtime.local.users import resolve_gid, resolve_uid

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
_STALE_STATE_FILES = ("exit", "exit.tmp", "launch-error")  # exit.tmp: older shims
ROOT_ENV = {"PATH": TOOL_PATH}  # all the launch chain's root stages ever see
# The unprivileged stage: read the environment script from the memfd on stdin, then run
# the command with stdin on /dev/null.
ENV_STAGE = '. /dev/stdin && exec "$@" </dev/null'
FSTAB_FILE = "mounts.fstab"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True, slots=True)
class LocalRuntimeConfig:
    """Who jobs run as and where their cgroups go."""

    uid: int
    gid: int
    cgroup_root: str = "jobyard"  # directory name under each cgroup hierarchy
    default_max_pids: int = DEFAULT_MAX_PIDS  # for jobs that ask for no pids limit; 0 = none
    cgroup_mount: Path = Path("/sys/fs/cgroup")

    def __post_init__(self) -> None:
        if self.uid <= 0 or self.gid <= 0:
            raise InvalidArgument(
                f"invalid job user {self.uid}:{self.gid}: jobs must never run as root"
            )
        if self.default_max_pids < 0:
            raise InvalidArgument("invalid defaultMaxPids: must not be negative")
        check_name(self.cgroup_root, "cgroupRoot")

    @classmethod
    def from_names(
        cls,
        user: str | int = "nobody",
        group: str | int = "nogroup",
        *,
        cgroup_root: str = "jobyard",
        default_max_pids: int = DEFAULT_MAX_PIDS,
        cgroup_mount: Path = Path("/sys/fs/cgroup"),
    ) -> LocalRuntimeConfig:
        """A config for ``user``/``group`` given by name or number."""
        return cls(
            resolve_uid(user), resolve_gid(group), cgroup_root, default_max_pids, cgroup_mount
        )

    @classmethod
    def from_config(cls, config: JobyardConfig) -> LocalRuntimeConfig:
        return cls.from_names(
            config.job_user,
            config.job_group,
            cgroup_root=config.cgroup_root,
            default_max_pids=config.default_max_pids,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Tools:
    """Absolute paths of the programs in the launch chain (never looked up in a job's PATH)."""

    unshare: str
    setpriv: str
    mount: str

    @classmethod
    def find(cls) -> _Tools:
        names = ("unshare", "setpriv", "mount")
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Shim:
    """The supervisor of one job, as named by its handle."""

    pid: int
    start_ticks: int
    state_dir: Path

    @classmethod
    def parse(cls, handle: Handle) -> _Shim:
        try:
            pid, ticks, state_dir = handle.backend_id.split(":", 2)
            return cls(int(pid), int(ticks), Path(state_dir))
        except ValueError:
            raise InvalidArgument(f"not a local runtime handle: {handle.backend_id!r}") from None

    @property
    def handle(self) -> Handle:
        return Handle(f"{self.pid}:{self.start_ticks}:{self.state_dir}")

    def open(self) -> int | None:
        """A pidfd on the shim while it is the process we started, else None."""
        if _start_ticks(self.pid) != self.start_ticks:
            return None
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return None
        if _start_ticks(self.pid) != self.start_ticks:  # reused between check and open
            os.close(pidfd)
            return None
        return pidfd


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat: the process start time, in clock ticks after boot."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(data[data.rindex(b")") + 2 :].split()[19])


async def _readable(fd: int, timeout: float | None = None) -> bool:
    """Wait until ``fd`` (a pidfd: its process ended) is readable, at most ``timeout``."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await asyncio.wait_for(ready, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


def _reap(pidfd: int) -> None:
    # Only our own child can be reaped (by us, once); a shim an earlier server started
    # belongs to init. P_PIDFD reaps exactly this process, whatever its pid has become.
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll a cgroup state (the freezer has no event on v1) until true or ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.001
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def _write_fstab(request: LaunchRequest) -> None:
    """The job's private /proc, /dev/shm and /tmp, for the shim's one ``mount --all``.

    Sources carry the job id: ``mount --all`` skips an entry whose source is already
    mounted on its target, which a plain ``proc``/``tmpfs`` always is.
    """
    tag = request.job_id
    lines = [f"jobyard-proc-{tag} /proc proc nosuid,nodev,noexec 0 0"]
    if os.path.isdir("/dev/shm"):
        lines.append(f"jobyard-shm-{tag} /dev/shm tmpfs mode=1777,nosuid,nodev 0 0")
    lines.append(f"jobyard-tmp-{tag} /tmp tmpfs mode=1777,nosuid,nodev 0 0")  # last: hides /tmp
    (request.state_dir / FSTAB_FILE).write_text("\n".join(lines) + "\n")


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


def _first_child(pid: int) -> int | None:
    """The supervisor's one child: the job's PID 1, as the host numbers it."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # gone, or a kernel without CONFIG_PROC_CHILDREN
        return None
    return int(children[0]) if children else None


def _dies_of_sigterm(pid: int) -> bool:
    """Whether SIGTERM would end ``pid`` by default: neither caught, ignored nor blocked."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    bit = 1 << (signal.SIGTERM - 1)
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn", "SigCgt") and int(value, 16) & bit:
            return False
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


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

    def __init__(self, config: LocalRuntimeConfig, *, cgroups: CgroupDriver | None = None) -> None:
        self._config = config
        self._tools = _Tools.find()
        self.cgroups = cgroups or detect_cgroups(config.cgroup_mount, root_name=config.cgroup_root)

    # -- start ----------------------------------------------------------------------

    async def start(self, request: LaunchRequest) -> Handle:
        created: list[Path] = []
        cgroup: JobCgroup | None = None
        try:
            self._make_dirs(request, created)
            _write_fstab(request)
            cgroup = self.cgroups.create(request.job_id, self._limits(request))
            pid = self._spawn(request, cgroup)
        except BaseException as exc:
            if cgroup is not None:
                with contextlib.suppress(OSError):  # nothing joined it: removal cannot be busy
                    cgroup.remove()
            self._remove_dirs(created)
            if isinstance(exc, OSError):
                raise LaunchError(f"cannot start the job: {exc}") from exc
            raise
        # Our own unreaped child always has a /proc entry, so this cannot be None.
        ticks = _start_ticks(pid) or 0
        log.info("job launched | jobId=%s shimPid=%d cgroup=v%d",
                 request.job_id, pid, self.cgroups.version)  # fmt: skip
        return _Shim(pid, ticks, request.state_dir).handle

    def _make_dirs(self, request: LaunchRequest, created: list[Path]) -> None:
        for path in (request.state_dir, request.workdir, request.output_path):
            if not path.is_absolute():  # the handle and the shim rely on absolute paths
                raise LaunchError(f"cannot prepare the job: {path} is not an absolute path")
        owners = ((request.state_dir, 0, 0), (request.workdir, self._config.uid, self._config.gid))
        for path, uid, gid in owners:
            if not os.path.lexists(path):
                path.mkdir(mode=0o700, parents=True)
                created.append(path)
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise LaunchError(f"cannot prepare the job: {path} is not a directory")
            os.chown(path, uid, gid)
            path.chmod(0o700)
        for name in _STALE_STATE_FILES:
            (request.state_dir / name).unlink(missing_ok=True)

    @staticmethod
    def _remove_dirs(created: list[Path]) -> None:
        for path in reversed(created):
            shutil.rmtree(path, ignore_errors=True)

    def _limits(self, request: LaunchRequest) -> Limits:
        resources = request.spec.resources
        device = block_device_of(request.workdir) if resources.max_iobps else ""
        return Limits.from_resources(
            resources, io_device=device, default_max_pids=self._config.default_max_pids
        )

    def _spawn(self, request: LaunchRequest, cgroup: JobCgroup) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        environment = _env_memfd(self._env(request))
        try:
            output = os.open(request.output_path, flags, 0o640)
            try:
                shim = _DetachedPopen(
                    self._argv(request, cgroup.procs_files()),
                    stdin=environment,
                    stdout=output,
                    stderr=output,
                    cwd=request.workdir,
                    env=ROOT_ENV,
                    start_new_session=True,
                    close_fds=True,
                )
            finally:
                os.close(output)
        finally:
            os.close(environment)
        return shim.pid

    def _argv(self, request: LaunchRequest, procs_files: list[Path]) -> list[str]:
        tools, config = self._tools, self._config
        namespaces = ["--pid", "--mount", "--ipc", "--uts", "--propagation", "private"]
        if request.spec.network == NETWORK_NONE:
            namespaces.append("--net")  # a new, empty network namespace: only loopback
        shim = [SHELL, str(SHIM_SCRIPT), str(request.state_dir), str(request.workdir),
                tools.mount, str(request.state_dir / FSTAB_FILE)]  # fmt: skip
        drop = [
            tools.setpriv,
            f"--reuid={config.uid}",
            f"--regid={config.gid}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
        command = [SHELL, "-c", ENV_STAGE, "jobyard", request.spec.command, *request.spec.args]
        return [
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
    def _env(request: LaunchRequest) -> dict[str, str]:
        # Only what the job was given: nothing of the server's environment leaks in.
        env = {"PATH": JOB_PATH, "HOME": str(request.workdir), "LANG": JOB_LANG}
        env |= request.spec.environment
        env |= request.spec.secret_environment
        env["JOBYARD_JOB_ID"] = request.job_id
        return env

    # -- wait -----------------------------------------------------------------------

    async def wait(self, job_id: str, handle: Handle) -> ExitInfo:
        shim = _Shim.parse(handle)
        pidfd = shim.open()
        if pidfd is not None:
            try:
                await _readable(pidfd)
                _reap(pidfd)
            finally:
                os.close(pidfd)
        return self._exit_info(job_id, shim.state_dir)

    def _exit_info(self, job_id: str, state_dir: Path) -> ExitInfo:
        oom_killed = self._oom_killed(job_id)
        exit_file = state_dir / "exit"
        try:
            code = int(exit_file.read_text().strip())
            ended_at = _ended_at(exit_file)
        except (OSError, ValueError):
            return ExitInfo(
                exit_code=None, lost=True, oom_killed=oom_killed,
                message="the job's supervisor ended without recording an exit status",
            )  # fmt: skip
        reason = _last_line(state_dir / "launch-error")  # empty unless setup failed
        if code == LAUNCH_FAILED_EXIT_CODE and reason:
            detail = _last_line(state_dir / "shim.log")
            message = f"launch failed: {reason}" + (f" ({detail})" if detail else "")
            return ExitInfo(exit_code=code, ended_at=ended_at, message=message, launch_failed=True)
        # The shell reports "killed by signal N" as 128+N.
        signum = code - 128 if code > 128 else None
        return ExitInfo(exit_code=code, signal=signum, oom_killed=oom_killed, ended_at=ended_at)

    def _oom_killed(self, job_id: str) -> bool:
        try:
            return self.cgroups.job(job_id).oom_kills() > 0
        except (OSError, ValueError):
            return False

    # -- control --------------------------------------------------------------------

    async def stop(self, job_id: str, handle: Handle, grace_seconds: float) -> None:
        cgroup = self.cgroups.job(job_id)
        if not cgroup.exists():
            return
        cgroup.signal_all(signal.SIGTERM)
        try:
            cgroup.thaw()  # a suspended job can neither handle SIGTERM nor die while frozen
        except OSError as exc:
            if not gone(exc):
                raise
        if grace_seconds > 0:
            await self._wait_ended(handle, cgroup, grace_seconds)
        await asyncio.to_thread(cgroup.kill_all)
        log.info("job stopped | jobId=%s", job_id)

    async def _wait_ended(self, handle: Handle, cgroup: JobCgroup, timeout: float) -> None:
        shim = _Shim.parse(handle)
        pidfd = shim.open()
        if pidfd is None:
            # No supervisor left to watch (it was killed): watch the cgroup empty out instead.
            await _until(lambda: not cgroup.pids(), timeout)
            return
        init = _first_child(shim.pid)
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + timeout, 0.001
        try:
            while True:
                if init is not None and cgroup.pids() == [init] and _dies_of_sigterm(init):
                    # The kernel spares a namespace's PID 1 the signals it has no handler
                    # for; anywhere else SIGTERM would have ended it. Once it is alone (its
                    # children had their SIGTERM), end it as SIGTERM would have.
                    _signal(init, signal.SIGKILL)
                left = deadline - loop.time()
                # PID 1 ending ends the namespace, and then the supervisor.
                if left <= 0 or await _readable(pidfd, min(left, delay)):
                    return
                delay = min(delay * 2, STOP_POLL_SECONDS)
        finally:
            os.close(pidfd)

    async def suspend(self, job_id: str, handle: Handle) -> None:
        cgroup = self._existing(job_id)
        _freezer(job_id, cgroup.freeze)
        if not await _until(cgroup.frozen, FREEZE_TIMEOUT_SECONDS):
            with contextlib.suppress(OSError):
                cgroup.thaw()  # a job that is not SUSPENDED must not stay half frozen
            raise FailedPrecondition(
                f"job {job_id} did not freeze within {FREEZE_TIMEOUT_SECONDS:g} s"
            )

    async def resume(self, job_id: str, handle: Handle) -> None:
        cgroup = self._existing(job_id)
        _freezer(job_id, cgroup.thaw)
        if not await _until(lambda: not cgroup.frozen(), FREEZE_TIMEOUT_SECONDS):
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
                    return
                await asyncio.sleep(0.02)
