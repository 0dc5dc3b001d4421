"""What each rank's supervisor mounts before the command runs: a private /proc, /dev/shm
and /tmp, and the rank's replica files read-only at :data:`~jobyard.runtime.ranks.INFO_DIR`.

On the host, under the job's state dir (root's, 0700)::

    STATE_DIR/info/            the files every rank shares (0755, files 0644):
                               number_of_nodes.txt, cores.txt, job_id.txt, node-<i>.txt,
                               and an empty rank.txt to mount over
    <rank dir>/rank.txt        this rank's rank.txt (see supervisors.rank_dir)
    <rank dir>/mounts.fstab    the rank's mounts, for the supervisor's one ``mount --all``

Each rank binds ``info/`` at ``/run/jobyard``, then its own ``rank.txt`` over the one there:
N ranks need N node files each, and a directory per rank would make N² files (65 536 for
256 ranks). Both binds are read-only, so no rank can change what another reads. The mount
point is created on the host (``/run`` is root's; ``/etc`` is not ours to add to), and the
mounts happen in the rank's own mount namespace, so the host never sees them.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.ranks import INFO_DIR, RANK_FILE, RankInfo

FSTAB_FILE = "mounts.fstab"
INFO_SUBDIR = "info"
_FSTAB_ESCAPES = str.maketrans({" ": r"\040", "\t": r"\011", "\n": r"\012", "\\": r"\134"})


def make_mount_point() -> None:
    """The empty directory the ranks' info is mounted on (host side; idempotent)."""
    os.makedirs(INFO_DIR, mode=0o755, exist_ok=True)


def write_shared_info(state_dir: Path, info: RankInfo) -> None:
    """``STATE_DIR/info``: readable by the job user once mounted, writable by no one."""
    shared = state_dir / INFO_SUBDIR
    shared.mkdir(mode=0o755, exist_ok=True)
    shared.chmod(0o755)
    for name, content in {**info.shared_files(), RANK_FILE: ""}.items():
        _write_readable(shared / name, content)


def write_rank_mounts(request: LaunchRequest, rank: int, rank_dir: Path) -> None:
    """The rank's ``rank.txt`` and its fstab (mount order is line order)."""
    _write_readable(rank_dir / RANK_FILE, RankInfo.rank_file(rank))
    tag = request.job_id
    # Sources of the virtual file systems carry the job id: ``mount --all`` skips an entry
    # whose source is already mounted on its target, which a plain ``proc`` always is.
    lines = [f"jobyard-proc-{tag} /proc proc nosuid,nodev,noexec 0 0"]
    if os.path.isdir("/dev/shm"):
        lines.append(f"jobyard-shm-{tag} /dev/shm tmpfs mode=1777,nosuid,nodev 0 0")
    info = _escaped(request.state_dir / INFO_SUBDIR)
    lines.append(f"{info} {INFO_DIR} none bind,ro,nosuid,nodev,noexec 0 0")
    rank_file = _escaped(rank_dir / RANK_FILE)
    lines.append(f"{rank_file} {INFO_DIR}/{RANK_FILE} none bind,ro,nosuid,nodev,noexec 0 0")
    # Last: the new /tmp hides a state dir that lives under the host's /tmp.
    lines.append(f"jobyard-tmp-{tag} /tmp tmpfs mode=1777,nosuid,nodev 0 0")
    (rank_dir / FSTAB_FILE).write_text("\n".join(lines) + "\n")


def _write_readable(path: Path, content: str) -> None:
    path.write_text(content)
    path.chmod(0o644)


def _escaped(path: Path) -> str:
    """``path`` as an fstab field: blanks and backslashes as octal escapes."""
    return str(path).translate(_FSTAB_ESCAPES)
