"""Writing uploads into a directory (a job's work directory, a workflow's stored files) and
reading them back; paths were validated by :func:`jobyard.domain.uploads.validate_uploads`."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from jobyard.domain.errors import JobyardError, ResourceExhausted
from jobyard.domain.uploads import DEFAULT_DIR_MODE, Upload
from jobyard.logs import JobLayout

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def place(root: Path, uploads: Iterable[Upload]) -> None:
    """Create every upload under ``root`` (created if missing) with its mode.

    O_EXCL and O_NOFOLLOW: nothing already there is overwritten or followed, so a path can
    never be redirected outside ``root``.
    """
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directories = []
    for upload in sorted(uploads, key=lambda u: u.path):
        target = root / upload.path
        _make_parents(root, target.parent)
        if upload.is_directory:
            target.mkdir(mode=DEFAULT_DIR_MODE, exist_ok=True)
            directories.append((target, upload.permissions))
            continue
        fd = os.open(target, _CREATE_FLAGS, 0o600)
        try:
            view = memoryview(upload.content)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, upload.permissions)
        finally:
            os.close(fd)
    for target, mode in reversed(directories):  # last: a 0555 directory still gets its files
        target.chmod(mode)


def place_in_workdir(layout: JobLayout, job_id: str, files: Sequence[Upload]) -> None:
    """:func:`place` into a new job's work directory; on failure the job's directory goes."""
    try:
        place(layout.workdir(job_id), files)
    except OSError as exc:
        layout.remove(job_id)  # no half-created job is left behind
        if exc.errno == errno.ENOSPC:
            raise ResourceExhausted("cannot place the uploads: no space left") from exc
        raise JobyardError(f"cannot place the uploads: {exc.strerror}") from exc


def _make_parents(root: Path, parent: Path) -> None:
    missing = []
    while parent != root and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for path in reversed(missing):
        path.mkdir(mode=DEFAULT_DIR_MODE)


def load(root: Path, paths: Sequence[str]) -> list[Upload]:
    """The uploads stored under ``root`` at ``paths`` (a directory with what is under it)."""
    out: dict[str, Upload] = {}
    for path in paths:
        top = root / path
        for entry in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
            info = entry.lstat()
            rel = entry.relative_to(root).as_posix()
            if stat.S_ISDIR(info.st_mode):
                out[rel] = Upload(rel, mode=stat.S_IMODE(info.st_mode), is_directory=True)
            elif stat.S_ISREG(info.st_mode):
                out[rel] = Upload(rel, entry.read_bytes(), stat.S_IMODE(info.st_mode))
    return list(out.values())
