"""cgroup drivers: one interface over cgroup v2 and the cgroup v1 hierarchies.

A job's processes live in one cgroup, ``<mount>/<root_name>/<job_id>`` — v2: one directory
in the unified tree; v1: one directory in each controller's hierarchy. The driver writes every
limit before any process joins, so no part of a job ever runs unlimited. The job's processes
join by writing to :meth:`JobCgroup.procs_files` themselves (see ``shim.sh``).

Both drivers act only on the paths they are given, so they can be exercised over a fake tree
in a temporary directory; :func:`detect_cgroups` picks the right one for the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from jobyard.domain.errors import FailedPrecondition, InvalidArgument, LaunchError
from jobyard.domain.jobs import Resources
from jobyard.runtime.base import Usage

CPU_PERIOD_US = 100_000
MIB = 1024 * 1024
KILL_TIMEOUT_SECONDS = 2.0  # how long kill_all keeps freezing and killing stragglers
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "io", "pids")
V1_REQUIRED = ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer")
V1_CONTROLLERS = (*V1_REQUIRED, "blkio")  # blkio is only needed for io limits
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
# The cgroup was removed (ENODEV: while one of its files was open), e.g. by the cleanup
# that follows the job's end racing a stop.
_GONE_ERRNOS = (errno.ENOENT, errno.ENODEV)


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """A job's limits in the units the kernel files take."""

    cpu_percent: int = 0  # percent of one core; 0 = unlimited
    cpu_cores: str = ""  # cpuset list such as "0-1"; "" = every cpu of the parent
    memory_bytes: int = 0  # 0 = unlimited
    io_bps: int = 0  # bytes/s, applied to reads and to writes; 0 = unlimited
    io_device: str = ""  # "MAJ:MIN" of the disk the io limit applies to
    max_pids: int = 0  # 0 = unlimited

    @classmethod
    def from_resources(
        cls, resources: Resources, *, io_device: str = "", default_max_pids: int = 0
    ) -> Limits:
        """``default_max_pids`` caps jobs that ask for no pids limit (0 keeps them unlimited)."""
        return cls(
            cpu_percent=resources.max_cpu,
            cpu_cores=resources.cpu_cores,
            memory_bytes=resources.max_memory * MIB,
            io_bps=resources.max_iobps,
            io_device=io_device,
            max_pids=resources.max_pids or default_max_pids,
        )

    # Labels name the limit as users know it, for LaunchError messages.
    @property
    def cpu_label(self) -> str:
        return f"maxCPU={self.cpu_percent}%"

    @property
    def cores_label(self) -> str:
        return f"cpuCores={self.cpu_cores}"

    @property
    def memory_label(self) -> str:
        return f"maxMemory={self.memory_bytes // MIB} MB"

    @property
    def io_label(self) -> str:
        return f"maxIOBPS={self.io_bps}"

    @property
    def pids_label(self) -> str:
        return f"maxPids={self.max_pids}"


class JobCgroup(Protocol):
    """The cgroup(s) of one job: its processes, limits, freezer and accounting."""

    job_id: str

    def exists(self) -> bool: ...

    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes ``0`` to in order to join the job."""
        ...

    def pids(self) -> list[int]: ...

    def signal_all(self, sig: int) -> None: ...

    def kill_all(self) -> None:
        """SIGKILL every process, including ones that double-forked or called setsid."""
        ...

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def frozen(self) -> bool:
        """Whether the kernel reports every process of the job frozen."""
        ...

    def oom_kills(self) -> int: ...

    def usage(self) -> Usage: ...

    def remove(self) -> None:
        """Remove the directories; raises ``OSError(EBUSY)`` while processes remain."""
        ...


class CgroupDriver(Protocol):
    """Creates and finds job cgroups on one cgroup version."""

    version: int

    def create(self, job_id: str, limits: Limits) -> JobCgroup:
        """Create the job's cgroup with every limit written; raises LaunchError, leaving
        nothing behind, when a limit cannot be applied."""
        ...

    def job(self, job_id: str) -> JobCgroup:
        """The job's cgroup by id (it may no longer exist)."""
        ...


# -- file helpers ---------------------------------------------------------------------


def _write(path: Path, value: str) -> None:
    # O_CREAT is harmless on cgroupfs (the file exists or the open fails) and lets unit
    # tests run over a plain directory tree.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    return path.read_text().strip()


def _read_or_empty(path: Path) -> str:
    try:
        return _read(path)
    except FileNotFoundError:
        return ""


def _apply(label: str, path: Path, value: str) -> None:
    try:
        _write(path, value)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LaunchError(
            f"cannot apply {label}: writing {value!r} to {path.name} failed: {reason}"
        ) from exc


def _keyed(path: Path, key: str) -> int:
    """The number after ``key`` in a "key value" file (memory.events, cpu.stat, ...)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


def _number(path: Path) -> int:
    try:
        return int(_read(path))
    except (OSError, ValueError):
        return 0


def gone(exc: OSError) -> bool:
    """Whether ``exc`` only says that the cgroup no longer exists."""
    return exc.errno in _GONE_ERRNOS


def _read_pids(procs: Path) -> list[int]:
    try:
        return [int(line) for line in procs.read_text().split()]
    except OSError as exc:
        if gone(exc):
            return []
        raise


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll ``condition`` until true or ``deadline`` (time.monotonic); the cgroup files
    offer no blocking read for these states."""
    delay = 0.001
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    return True


def check_name(value: str, what: str) -> str:
    """Refuse anything that is not a single safe path component."""
    if not _NAME.match(value) or value in (".", ".."):
        raise InvalidArgument(f"invalid {what} {value!r}: not a plain directory name")
    return value


def _mkdir(path: Path, *, exist_ok: bool) -> None:
    try:
        path.mkdir(exist_ok=exist_ok)
    except FileExistsError:
        raise LaunchError(f"cannot create cgroup {path}: it already exists") from None
    except OSError as exc:
        raise LaunchError(f"cannot create cgroup {path}: {exc.strerror or exc}") from exc


def _rmdir(path: Path) -> None:
    # cgroupfs removes a cgroup's files with its directory (unit tests replace this).
    path.rmdir()


def _rmdirs(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            _rmdir(path)


def _check_io(limits: Limits, available: bool) -> None:
    if not limits.io_bps:
        return
    if not limits.io_device:
        raise LaunchError(
            f"cannot apply {limits.io_label}: the working directory is not on a block device"
        )
    if not available:
        raise LaunchError(f"cannot apply {limits.io_label}: no blkio cgroup hierarchy")


# -- shared behaviour -----------------------------------------------------------------


class _JobCgroupBase:
    """What both versions share: process listing, signalling, freeze-and-kill, removal."""

    job_id: str

    def _dirs(self) -> list[Path]:
        raise NotImplementedError

    def _procs_dir(self) -> Path:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    def exists(self) -> bool:
        return any(d.is_dir() for d in self._dirs())

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self._dirs()]

    def pids(self) -> list[int]:
        return _read_pids(self._procs_dir() / "cgroup.procs")

    def signal_all(self, sig: int) -> None:
        for pid in self.pids():
            _kill(pid, sig)

    def _freeze_and_kill(self) -> None:
        try:
            self._kill_rounds()
        except OSError as exc:
            if not gone(exc):
                raise  # removed meanwhile: its last process had ended

    def _kill_rounds(self) -> None:
        # Frozen processes cannot fork, so the list read while frozen is complete; the
        # SIGKILLs take effect on thaw. Rounds repeat for a task the freezer could not
        # catch in time (uninterruptible sleep).
        deadline = time.monotonic() + KILL_TIMEOUT_SECONDS
        while self.pids() and time.monotonic() < deadline:
            self.freeze()
            _wait_until(self.frozen, deadline)
            self.signal_all(signal.SIGKILL)
            self.thaw()
            _wait_until(lambda: not self.pids(), min(deadline, time.monotonic() + 0.2))

    def remove(self) -> None:
        _rmdirs(self._dirs())


# -- cgroup v2 ------------------------------------------------------------------------


class JobCgroupV2(_JobCgroupBase):
    """A job's directory in the unified hierarchy."""

    def __init__(self, job_id: str, path: Path) -> None:
        self.job_id = job_id
        self.path = path

    def _dirs(self) -> list[Path]:
        return [self.path]

    def _procs_dir(self) -> Path:
        return self.path

    def kill_all(self) -> None:
        if not self.path.is_dir():
            return
        try:
            _write(self.path / "cgroup.kill", "1")
        except OSError:  # kernels before 5.14 have no cgroup.kill
            self._freeze_and_kill()

    def freeze(self) -> None:
        _write(self.path / "cgroup.freeze", "1")

    def thaw(self) -> None:
        _write(self.path / "cgroup.freeze", "0")

    def frozen(self) -> bool:
        return _keyed(self.path / "cgroup.events", "frozen") == 1

    def oom_kills(self) -> int:
        return _keyed(self.path / "memory.events", "oom_kill")

    def usage(self) -> Usage:
        io = 0
        try:
            for line in (self.path / "io.stat").read_text().splitlines():
                for field in line.split()[1:]:
                    key, _, value = field.partition("=")
                    if key in ("rbytes", "wbytes"):
                        io += int(value)
        except OSError:
            pass
        return Usage(
            cpu_seconds=_keyed(self.path / "cpu.stat", "usage_usec") / 1e6,
            memory_peak_bytes=_number(self.path / "memory.peak"),
            memory_current_bytes=_number(self.path / "memory.current"),
            io_bytes=io,
        )


class CgroupV2:
    """Jobs in ``<root>/<root_name>/<job_id>`` of a cgroup2 mount."""

    version = 2

    def __init__(self, root: Path, root_name: str = "jobyard") -> None:
        self.root = root
        self.parent = root / check_name(root_name, "cgroup root name")

    def job(self, job_id: str) -> JobCgroupV2:
        return JobCgroupV2(job_id, self.parent / check_name(job_id, "job id"))

    def create(self, job_id: str, limits: Limits) -> JobCgroupV2:
        _check_io(limits, available=True)
        job = self.job(job_id)
        self._enable_controllers(self.root)
        _mkdir(self.parent, exist_ok=True)
        self._enable_controllers(self.parent)
        _mkdir(job.path, exist_ok=False)
        try:
            self._write_limits(job.path, limits)
        except BaseException:
            _rmdirs([job.path])
            raise
        return job

    def _enable_controllers(self, path: Path) -> None:
        control = path / "cgroup.subtree_control"
        try:
            enabled = _read(control).split() if control.exists() else []
            missing = [c for c in V2_CONTROLLERS if c not in enabled]
            if missing:
                _write(control, " ".join(f"+{c}" for c in missing))
        except OSError as exc:
            raise LaunchError(
                f"cannot enable the cgroup controllers {', '.join(V2_CONTROLLERS)} "
                f"in {control}: {exc.strerror or exc}"
            ) from exc

    def _write_limits(self, path: Path, limits: Limits) -> None:
        quota = str(limits.cpu_percent * CPU_PERIOD_US // 100) if limits.cpu_percent else "max"
        _apply(limits.cpu_label, path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        if limits.cpu_cores:
            _apply(limits.cores_label, path / "cpuset.cpus", limits.cpu_cores)
        memory = str(limits.memory_bytes) if limits.memory_bytes else "max"
        _apply(limits.memory_label, path / "memory.max", memory)
        if limits.memory_bytes and (self.parent / "memory.swap.max").exists():
            # Without this the job would page out to swap instead of hitting its limit.
            _apply(limits.memory_label, path / "memory.swap.max", "0")
        _apply(limits.pids_label, path / "pids.max", str(limits.max_pids or "max"))
        if limits.io_bps:
            value = f"{limits.io_device} rbps={limits.io_bps} wbps={limits.io_bps}"
            _apply(limits.io_label, path / "io.max", value)


# -- cgroup v1 ------------------------------------------------------------------------


class JobCgroupV1(_JobCgroupBase):
    """A job's directory in each v1 hierarchy (co-mounted controllers share one)."""

    def __init__(self, job_id: str, dirs: Mapping[str, Path]) -> None:
        self.job_id = job_id
        self.dirs = dict(dirs)  # controller -> directory

    def _dirs(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def _procs_dir(self) -> Path:
        return self.dirs["freezer"]

    def kill_all(self) -> None:
        self._freeze_and_kill()

    def freeze(self) -> None:
        _write(self.dirs["freezer"] / "freezer.state", "FROZEN")

    def thaw(self) -> None:
        _write(self.dirs["freezer"] / "freezer.state", "THAWED")

    def frozen(self) -> bool:
        try:
            return _read(self.dirs["freezer"] / "freezer.state") == "FROZEN"
        except OSError:
            return False

    def oom_kills(self) -> int:
        return _keyed(self.dirs["memory"] / "memory.oom_control", "oom_kill")

    def usage(self) -> Usage:
        memory = self.dirs["memory"]
        return Usage(
            cpu_seconds=_number(self.dirs["cpuacct"] / "cpuacct.usage") / 1e9,
            memory_peak_bytes=_number(memory / "memory.max_usage_in_bytes"),
            memory_current_bytes=_number(memory / "memory.usage_in_bytes"),
            io_bytes=self._io_bytes(),
        )

    def _io_bytes(self) -> int:
        blkio = self.dirs.get("blkio")
        if blkio is None:
            return 0
        return _keyed(blkio / "blkio.throttle.io_service_bytes", "Total")


class CgroupV1:
    """Jobs in ``<mount>/<root_name>/<job_id>`` of each v1 controller hierarchy."""

    version = 1

    def __init__(self, mounts: Mapping[str, Path], root_name: str = "jobyard") -> None:
        missing = [c for c in V1_REQUIRED if c not in mounts]
        if missing:
            raise FailedPrecondition(f"cgroup v1 hierarchies missing for: {', '.join(missing)}")
        self.mounts = {c: p for c, p in mounts.items() if c in V1_CONTROLLERS}
        self.root_name = check_name(root_name, "cgroup root name")

    def job(self, job_id: str) -> JobCgroupV1:
        check_name(job_id, "job id")
        dirs = {c: mount / self.root_name / job_id for c, mount in self.mounts.items()}
        return JobCgroupV1(job_id, dirs)

    def create(self, job_id: str, limits: Limits) -> JobCgroupV1:
        _check_io(limits, available="blkio" in self.mounts)
        job = self.job(job_id)
        created: list[Path] = []
        try:
            for mount in dict.fromkeys(self.mounts.values()):
                self._prepare_parent(mount)
            for path in job._dirs():
                _mkdir(path, exist_ok=False)
                created.append(path)
            self._write_limits(job, limits)
        except BaseException:
            _rmdirs(reversed(created))
            raise
        return job

    def _prepare_parent(self, mount: Path) -> None:
        parent = mount / self.root_name
        _mkdir(parent, exist_ok=True)
        if mount == self.mounts["cpuset"]:
            # A new v1 cpuset starts with no cpus and no memory nodes, and no task can join
            # it (nor can children be given any) until they are filled in from the parent.
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not _read_or_empty(parent / name):
                    _apply(f"the cpuset of {parent}", parent / name, _read(mount / name))

    def _write_limits(self, job: JobCgroupV1, limits: Limits) -> None:
        cpu = job.dirs["cpu"]
        _apply(limits.cpu_label, cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        quota = str(limits.cpu_percent * CPU_PERIOD_US // 100) if limits.cpu_percent else "-1"
        _apply(limits.cpu_label, cpu / "cpu.cfs_quota_us", quota)
        cpuset = job.dirs["cpuset"]
        cpus = limits.cpu_cores or _read(cpuset.parent / "cpuset.cpus")
        _apply(limits.cores_label, cpuset / "cpuset.cpus", cpus)
        mems = _read(cpuset.parent / "cpuset.mems")
        _apply("the cpuset memory nodes", cpuset / "cpuset.mems", mems)
        memory = job.dirs["memory"]
        if limits.memory_bytes:
            _apply(limits.memory_label, memory / "memory.limit_in_bytes", str(limits.memory_bytes))
            if (self.mounts["memory"] / "memory.memsw.limit_in_bytes").exists():
                # Memory plus swap: without it the job would page out instead of hitting
                # its limit. Must be written after memory.limit_in_bytes (memsw >= limit).
                memsw = memory / "memory.memsw.limit_in_bytes"
                _apply(limits.memory_label, memsw, str(limits.memory_bytes))
        _apply(limits.pids_label, job.dirs["pids"] / "pids.max", str(limits.max_pids or "max"))
        if limits.io_bps:
            value = f"{limits.io_device} {limits.io_bps}"
            for name in ("blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"):
                _apply(limits.io_label, job.dirs["blkio"] / name, value)


# -- detection --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Mount:
    point: Path
    fstype: str
    options: frozenset[str]


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[_Mount]:
    """The mounts of a ``/proc/PID/mountinfo`` text: point, filesystem type, super options."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        options = frozenset(tail[2].split(","))
        mounts.append(_Mount(Path(_unescape(fields[4])), tail[0], options))
    return mounts


def detect_cgroups(
    root: Path = Path("/sys/fs/cgroup"),
    *,
    root_name: str = "jobyard",
    mountinfo: Path = Path("/proc/self/mountinfo"),
) -> CgroupDriver:
    """v2 when ``root`` is a cgroup2 mount offering every needed controller, else v1.

    The v1 hierarchies are found from the mount table, since cpu and cpuacct (and others)
    may be co-mounted or separate depending on the distribution.
    """
    mounts = parse_mountinfo(mountinfo.read_text())
    if any(m.fstype == "cgroup2" and m.point == root for m in mounts):
        try:
            offered = _read(root / "cgroup.controllers").split()
        except OSError:
            offered = []
        if all(c in offered for c in V2_CONTROLLERS):
            return CgroupV2(root, root_name)
    hierarchies: dict[str, Path] = {}
    for mount in mounts:
        if mount.fstype == "cgroup":
            for controller in mount.options & set(V1_CONTROLLERS):
                hierarchies.setdefault(controller, mount.point)
    if not hierarchies:
        raise FailedPrecondition(
            f"no usable cgroups: {root} is not cgroup2 with {', '.join(V2_CONTROLLERS)} "
            "and no cgroup v1 hierarchy is mounted"
        )
    return CgroupV1(hierarchies, root_name)


def block_device_of(path: Path, sys_root: Path = Path("/sys")) -> str:
    """``"MAJ:MIN"`` of the disk holding ``path`` (the whole disk for a partition), or ""
    when it is on no block device (tmpfs, overlay, btrfs subvolumes, ...)."""
    st_dev = os.stat(path).st_dev
    node = sys_root / "dev" / "block" / f"{os.major(st_dev)}:{os.minor(st_dev)}"
    if not node.exists():
        return ""
    if (node / "partition").exists():
        # Throttling applies to whole disks; a partition's sysfs directory sits in its disk's.
        return _read(node.resolve().parent / "dev")
    return _read(node / "dev")
