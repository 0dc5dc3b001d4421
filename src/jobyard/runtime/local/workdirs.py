"""A rank's directories on the host, made before anything of the job runs.

The state dir (and each rank's dir in it) is root's, 0700: the supervisor's exit record,
log and fstab. The work dir is the job's uid's, 0700 — for a disk-limited job an ext4 image
of its own mounted there (:mod:`jobyard.runtime.local.disks`). Each rank's exit record is
written now, as blanks the supervisor overwrites in place, so that recording a job's end
needs no free space on the data disk.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from jobyard.domain.errors import LaunchError
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local import disks
from jobyard.runtime.local.supervisors import rank_dir
from jobyard.runtime.local.users import JobIds

STOP_MARK = "stop-requested"  # in the state dir: the job is being stopped as a whole
# Left by an earlier launch of the same job; exit.tmp: older shims.
STALE_STATE_FILES = ("exit", "exit.tmp", "launch-error", STOP_MARK)
# Before the supervisor records an exit status: blanks it overwrites in place ("0\n...").
EXIT_PLACEHOLDER = b" " * 15 + b"\n"


def prepare(request: LaunchRequest, ids: JobIds, created: list[Path], mount: str) -> None:
    """Make (or take over) the job's state, rank and work dirs, appending to ``created``
    what did not exist; ``mount``: the mount program, for a disk-limited work dir."""
    replicas = request.spec.replicas
    outputs = [request.output(rank) for rank in range(replicas)]
    for path in (request.state_dir, request.workdir, *outputs):
        if not path.is_absolute():  # the handle and the shim rely on absolute paths
            raise LaunchError(f"cannot prepare the job: {path} is not an absolute path")
    owners = [(request.state_dir, 0, 0), (request.workdir, ids.uid, ids.gid)]
    owners += [(rank_dir(request.state_dir, rank), 0, 0) for rank in range(1, replicas)]
    for path, uid, gid in owners:
        _own_dir(path, uid, gid, created)
    if max_disk := request.spec.resources.max_disk:
        disks.mount_work_disk(request.state_dir, request.workdir, max_disk, ids, mount)
        _own_dir(request.workdir, ids.uid, ids.gid, created)
    give_tree(request.workdir, ids.uid, ids.gid)
    for rank in range(replicas):
        for name in STALE_STATE_FILES:
            (rank_dir(request.state_dir, rank) / name).unlink(missing_ok=True)
        preallocate_exit(rank_dir(request.state_dir, rank) / "exit")


def _own_dir(path: Path, uid: int, gid: int, created: list[Path]) -> None:
    if not os.path.lexists(path):
        path.mkdir(mode=0o700, parents=True)
        created.append(path)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise LaunchError(f"cannot prepare the job: {path} is not a directory")
    os.chown(path, uid, gid)
    path.chmod(0o700)


def remove(created: list[Path]) -> None:
    """Undo :func:`prepare`'s new directories (a launch that failed part way)."""
    for path in reversed(created):
        shutil.rmtree(path, ignore_errors=True)


def preallocate_exit(path: Path) -> None:
    """The rank's exit record, written now so that recording the end needs no free space."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, EXIT_PLACEHOLDER)
    finally:
        os.close(fd)


def give_tree(root: Path, uid: int, gid: int) -> None:
    """Hand what the server placed in the work directory (uploads) to the job user.

    Never follows a symlink: the server writes none there, and a job cannot have run yet.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
