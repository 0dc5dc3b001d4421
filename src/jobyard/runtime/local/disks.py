"""A disk-limited job's /work: a sparse ext4 image of its own, mounted on its work dir.

``--max-disk MB`` is a real bound this way: past the image's size the job's writes fail
with ENOSPC, whatever it writes and however fast. The image is a sparse file in the job's
state dir (root's, 0700), so it takes only what the job writes; it is made and mounted on
the host (two programs, ~15 ms together on these machines, only for jobs with a limit) and
stays mounted after the job ends, so that ``files`` and ``download`` keep serving what the
job left; :meth:`jobyard.logs.layout.JobLayout.remove` unmounts it when the job is deleted.

The image is a little larger than the limit (ext4 keeps some blocks for itself); the log
hub's poll stops the job with DISK_LIMIT once /work and its output together pass the limit
(see :mod:`jobyard.logs.limits`).

TODO: after a host reboot the images of finished jobs are no longer mounted (their work
dirs look empty to ``files``); mount them again on first access. And each finished
disk-limited job holds a loop device and a mount until it is deleted: mount images of
finished jobs read-only on demand and unmount idle ones, so that thousands do not pile up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from jobyard.domain.errors import LaunchError
from jobyard.runtime.local.users import JobIds

IMAGE_FILE = "work.img"
MB = 1024 * 1024
# ext4's own share of a small file system (inode tables, bitmaps, reserved clusters).
OVERHEAD_FRACTION = 0.05
OVERHEAD_BYTES = 4 * MB
MKFS_TIMEOUT_SECONDS = 30.0
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def image_bytes(max_disk_mb: int) -> int:
    """The image's size for a limit of ``max_disk_mb``: room for the limit, and ext4's."""
    return int(max_disk_mb * MB * (1 + OVERHEAD_FRACTION)) + OVERHEAD_BYTES


def mkfs_tool() -> str | None:
    return shutil.which("mkfs.ext4", path=TOOL_PATH)


def mount_work_disk(
    state_dir: Path, workdir: Path, max_disk_mb: int, ids: JobIds, mount: str
) -> None:
    """Make the image and mount it on ``workdir`` (owned by the job's ids), keeping what
    the server already placed there (uploads). Idempotent: a mounted work dir is kept."""
    if os.path.ismount(workdir):
        return
    mkfs = mkfs_tool()
    if mkfs is None:
        raise LaunchError("--max-disk needs mkfs.ext4 (e2fsprogs) on the server host")
    image = state_dir / IMAGE_FILE
    with open(image, "wb") as f:
        f.truncate(image_bytes(max_disk_mb))
    options = f"root_owner={ids.uid}:{ids.gid},lazy_itable_init=1,nodiscard"
    _run([mkfs, "-q", "-F", "-m", "0", "-b", "4096", "-O", "^has_journal", "-E", options,
          str(image)])  # fmt: skip
    staged = _stage_contents(workdir)
    _run([mount, "-o", "loop,nosuid,nodev", str(image), str(workdir)])
    os.rmdir(workdir / "lost+found")  # the job's /work starts empty, as it does unlimited
    if staged is not None:
        shutil.copytree(staged, workdir, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(staged)


def unmount_work_disk(state_dir: Path, workdir: Path, umount: str) -> None:
    """Undo :func:`mount_work_disk` (a launch that failed part way)."""
    if os.path.ismount(workdir):
        _run([umount, "--lazy", str(workdir)])
    (state_dir / IMAGE_FILE).unlink(missing_ok=True)


def _stage_contents(workdir: Path) -> Path | None:
    """Move what is in ``workdir`` aside (it would be hidden under the mount); None if
    there is nothing."""
    if not any(workdir.iterdir()):
        return None
    staged = workdir.with_name(workdir.name + ".staged")
    shutil.rmtree(staged, ignore_errors=True)
    workdir.rename(staged)
    workdir.mkdir(mode=0o700)
    return staged


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(
            argv, check=True, capture_output=True, timeout=MKFS_TIMEOUT_SECONDS,
            env={"PATH": TOOL_PATH},
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip().splitlines()
        raise LaunchError(f"cannot make the job's disk: {detail[-1] if detail else exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LaunchError(f"cannot make the job's disk: {argv[0]} timed out") from exc
