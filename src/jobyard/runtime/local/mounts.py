"""What a job sees of the file system: the one place its mounts are decided.

Each rank's supervisor runs one ``mount --all`` on the rank's fstab (one program: each
mount program costs milliseconds; the mounts themselves cost microseconds), in the rank's
own mount namespace, so the host never sees them. In the job::

    /work               the job's work directory (its cwd and $HOME), read-write
    /run                private tmpfs owned by the job's user
    /run/jobyard        the replica files, read-only (also at /etc/ucloud, UCloud's place)
    /tmp /var/tmp /dev/shm   private tmpfs, mode 1777 (charged to the job's memory cgroup)
    /proc               the job's own (its pid namespace)
    /dev/mqueue         the job's own (its IPC namespace), where the host has one
    everything else     the host's root file system, read-only
    the data directory  hidden under an empty read-only tmpfs (wherever it lives)

The order of the entries matters and is kept by :func:`rank_mounts`: binds whose source is
in the data directory come first (/work last of them: a data dir may live under the host's
/work), then the root is made read-only, then the data directory is hidden, and /tmp comes
last (it hides a data directory that lives under the host's /tmp). Mounts other features
add for a job (volumes, ...) go in ``extra``: bound before /work and before anything is
hidden, so their sources may be anywhere; their targets must exist (the root is the host's).

The root is made read-only with a bind remount of ``/.``: ``mount --all`` skips an entry
whose target is exactly ``/`` (it never remounts the root at boot), and the remount needs
no writer open on the namespace's root mount (the supervisor's own files are opened before
``unshare``, through the host's mount, see shim.sh).

On the host, under the job's state dir (root's, 0700)::

    STATE_DIR/info/            the files every rank shares (0755, files 0644):
                               number_of_nodes.txt, cores.txt, job_id.txt, node-<i>.txt,
                               and an empty rank.txt to mount over
    <rank dir>/rank.txt        this rank's rank.txt (see supervisors.rank_dir)
    <rank dir>/mounts.fstab    the rank's mounts, for the supervisor's one ``mount --all``

Each rank binds ``info/`` at ``/run/jobyard``, then its own ``rank.txt`` over the one there:
N ranks need N node files each, and a directory per rank would make N² files (65 536 for
256 ranks). Both binds are read-only, so no rank can change what another reads. Mount points
on the read-only root (``/work``, ``/etc/ucloud``) must exist on the host:
:func:`make_mount_points` creates them (empty, root's, 0755).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from jobyard.domain.errors import InvalidArgument
from jobyard.runtime.base import Bind, LaunchRequest
from jobyard.runtime.ranks import INFO_DIR, RANK_FILE, RankInfo

FSTAB_FILE = "mounts.fstab"
INFO_SUBDIR = "info"
WORK_DIR = "/work"  # the job's work directory, inside the job
UCLOUD_DIR = "/etc/ucloud"  # where UCloud's jobs find their replica files
PRIVATE_TMPFS = ("/var/tmp", "/dev/shm")  # /tmp is mounted last, /run first
MQUEUE_DIR = "/dev/mqueue"  # where hosts mount POSIX message queues (world-writable)
_FSTAB_ESCAPES = str.maketrans({" ": r"\040", "\t": r"\011", "\n": r"\012", "\\": r"\134"})
_RO = "ro,nosuid,nodev,noexec"


@dataclasses.dataclass(frozen=True, slots=True)
class Mount:
    """One fstab entry: ``source target type options``."""

    source: str
    target: str
    fstype: str
    options: str

    @classmethod
    def bind(cls, source: Path | str, target: str, options: str = _RO) -> Mount:
        return cls(str(source), target, "none", f"bind,{options}")

    def line(self) -> str:
        fields = (self.source, self.target, self.fstype, self.options)
        return " ".join(_escaped(field) for field in fields) + " 0 0"


@dataclasses.dataclass(frozen=True, slots=True)
class JobView:
    """What the runtime hides from every job, and who owns the job's private /run."""

    uid: int
    gid: int
    hidden: tuple[Path, ...] = ()  # absolute host paths no job may see (the data dir)
    # Host directories under /run the private /run keeps, read-only (see host_run_keeps).
    run_keeps: tuple[str, ...] = ()


def host_run_keeps(resolv_conf: str = "/etc/resolv.conf") -> tuple[str, ...]:
    """What of the host's /run a job still needs: the directory the host's resolv.conf
    points into (systemd-resolved's /run/systemd/resolve), or DNS would fail in jobs."""
    real = os.path.realpath(resolv_conf)
    return (os.path.dirname(real),) if real.startswith("/run/") else ()


def check_hideable(path: Path) -> None:
    """Refuse to hide ``path`` where the job's own mount points live (hiding ``/var`` would
    take ``/var/tmp`` with it): a data dir must be a directory of its own."""
    targets = (WORK_DIR, UCLOUD_DIR, INFO_DIR, "/run", "/tmp", "/proc", *PRIVATE_TMPFS)
    clash = [target for target in targets if _under(target, str(path))]
    if clash:
        raise InvalidArgument(
            f"cannot hide {path} from jobs: it holds their {clash[0]}; put the data dir "
            "(and certificates) in a directory of their own"
        )


def make_mount_points() -> None:
    """The mount points on the host's root the jobs need (idempotent)."""
    for path in (WORK_DIR, UCLOUD_DIR):
        os.makedirs(path, mode=0o755, exist_ok=True)


def write_shared_info(state_dir: Path, info: RankInfo) -> None:
    """``STATE_DIR/info``: readable by the job user once mounted, writable by no one."""
    shared = state_dir / INFO_SUBDIR
    shared.mkdir(mode=0o755, exist_ok=True)
    shared.chmod(0o755)
    for name, content in {**info.shared_files(), RANK_FILE: ""}.items():
        _write_readable(shared / name, content)


def write_rank_mounts(
    request: LaunchRequest, rank: int, rank_dir: Path, view: JobView,
    extra: Sequence[Mount] = (),
) -> None:  # fmt: skip
    """The rank's ``rank.txt`` and its fstab (mount order is line order)."""
    _write_readable(rank_dir / RANK_FILE, RankInfo.rank_file(rank))
    entries = rank_mounts(request, rank_dir, view, extra)
    (rank_dir / FSTAB_FILE).write_text("".join(entry.line() + "\n" for entry in entries))


def rank_mounts(
    request: LaunchRequest, rank_dir: Path, view: JobView, extra: Sequence[Mount] = ()
) -> list[Mount]:
    """Every mount of one rank, in the order they must be made."""
    # Sources of the virtual file systems carry the job id: ``mount --all`` skips an entry
    # whose source is already mounted on its target, which a plain ``proc`` always is.
    tag = request.job_id
    info, rank_file = request.state_dir / INFO_SUBDIR, rank_dir / RANK_FILE
    # What the private /run keeps is staged in the rank dir first: the tmpfs hides it.
    staged = [(keep, rank_dir / f"host-run-{i}") for i, keep in enumerate(view.run_keeps)]
    entries = [
        *(Mount.bind(keep, str(stage), f"{_RO},X-mount.mkdir") for keep, stage in staged),
        Mount(f"jobyard-run-{tag}", "/run", "tmpfs",
              f"mode=0755,uid={view.uid},gid={view.gid},nosuid,nodev"),
        *(Mount.bind(stage, keep, f"{_RO},X-mount.mkdir") for keep, stage in staged),
        Mount.bind(info, INFO_DIR, f"{_RO},X-mount.mkdir"),
        Mount.bind(rank_file, f"{INFO_DIR}/{RANK_FILE}"),
        Mount.bind(info, UCLOUD_DIR),
        Mount.bind(rank_file, f"{UCLOUD_DIR}/{RANK_FILE}"),
        *extra,
        # After every other bind: a data dir under /work is out of reach once it is there.
        Mount.bind(request.workdir, WORK_DIR, "nosuid,nodev"),
        Mount("jobyard-root", "/.", "none", "remount,bind,ro"),
    ]  # fmt: skip
    covered = [WORK_DIR, "/run", *PRIVATE_TMPFS, "/tmp", *(m.target for m in extra)]
    entries += [Mount(f"jobyard-hidden-{tag}", str(path), "tmpfs", f"{_RO},mode=0755,size=4k")
                for path in _to_hide(view.hidden, covered)]  # fmt: skip
    entries += [Mount(f"jobyard{path.replace('/', '-')}-{tag}", path, "tmpfs",
                      "mode=1777,nosuid,nodev") for path in PRIVATE_TMPFS
                if os.path.isdir(path)]  # fmt: skip
    if os.path.isdir(MQUEUE_DIR):  # the host's would reach the host's IPC namespace
        entries.append(Mount(f"jobyard-mqueue-{tag}", MQUEUE_DIR, "mqueue", "nosuid,nodev,noexec"))
    entries.append(Mount(f"jobyard-proc-{tag}", "/proc", "proc", "nosuid,nodev,noexec"))
    # Last: the new /tmp hides a state dir that lives under the host's /tmp.
    entries.append(Mount(f"jobyard-tmp-{tag}", "/tmp", "tmpfs", "mode=1777,nosuid,nodev"))
    return entries


def attachment(bind: Bind) -> Mount:
    """A volume (read-write) or runtime (read-only, executable) bound where the job names it;
    the mount point is made on first use (``/volumes/NAME``, ``/runtime``)."""
    options = "ro,nosuid,nodev" if bind.read_only else "nosuid,nodev"
    return Mount.bind(bind.source, bind.target, f"{options},X-mount.mkdir=0755")


def _to_hide(hidden: Iterable[Path], covered: Sequence[str]) -> list[str]:
    """The hidden paths not already under a mount that covers them (a path under /tmp is
    gone once the private /tmp is there, and its mount point would not exist under it)."""
    return [str(path) for path in hidden
            if not any(_under(str(path), target) for target in covered)]  # fmt: skip


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _write_readable(path: Path, content: str) -> None:
    path.write_text(content)
    path.chmod(0o644)


def _escaped(field: str) -> str:
    """``field`` as an fstab field: blanks and backslashes as octal escapes."""
    return field.translate(_FSTAB_ESCAPES)
