"""JobFiles: the files a job left in its work directory — listed with SHA-256, read safely.

The work directory belongs to the job's user, who may fill it with symlinks, hard links and
FIFOs and swap them while the server (root) looks. So the server never resolves a path
there by name: it opens each component relative to its parent's descriptor with
``O_NOFOLLOW``, checks the kind of a file with ``lstat`` before opening it and compares
``fstat`` of what it opened with that (a file swapped in between is refused), and serves only
regular files owned by the work directory's owner (a hard link to anyone else's file, say
``/etc/shadow`` on the same file system, is refused). Symbolic links are never followed,
even those pointing inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import os
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

from jobyard.domain.errors import InvalidArgument, NotFound, ResourceExhausted
from jobyard.logs import JobLayout

FILE_CHUNK_BYTES = 256 * 1024
HASH_CHUNK_BYTES = 1024 * 1024
MAX_LISTED_FILES = 10_000
MAX_DEPTH = 128
HASH_CACHE_ENTRIES = 10_000

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# (device, inode, size, mtime, ctime): any write changes ctime, which the job cannot set.
_HashKey = tuple[int, int, int, int, int]


@dataclasses.dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the work directory, "/"-separated
    size: int
    sha256: str
    modified: datetime


class JobFiles:
    def __init__(self, layout: JobLayout) -> None:
        self._layout = layout
        self._hashes: dict[_HashKey, str] = {}
        self._hashes_lock = threading.Lock()  # listings hash in worker threads

    async def scan(self, job_id: str) -> list[FileEntry]:
        """Every regular file of the job's work directory (recursive), sorted by path."""
        return await asyncio.to_thread(self._list, job_id)

    async def read(self, job_id: str, path: str) -> AsyncIterator[tuple[int, bytes]]:
        """The file's bytes as ``(offset, chunk)``, up to its size when opened."""
        parts = relative_parts(path)
        fd = await asyncio.to_thread(self._open_file, job_id, parts, path)
        try:
            size, offset = os.fstat(fd).st_size, 0
            while offset < size:
                data = await asyncio.to_thread(os.pread, fd, FILE_CHUNK_BYTES, offset)
                if not data:
                    return  # truncated while being read
                yield offset, data[: size - offset]
                offset += len(data)
        finally:
            os.close(fd)

    # -- listing ----------------------------------------------------------------------------

    def _list(self, job_id: str) -> list[FileEntry]:
        root = self._open_root(job_id)
        if root is None:
            return []  # not started yet: nothing written
        try:
            owner = os.fstat(root).st_uid
            out = list(self._walk(root, "", owner, 0))
        finally:
            os.close(root)
        return sorted(out, key=lambda e: e.path)

    def _walk(self, dir_fd: int, prefix: str, owner: int, depth: int) -> Iterator[FileEntry]:
        if depth > MAX_DEPTH:
            raise ResourceExhausted(f"the work directory nests deeper than {MAX_DEPTH} levels")
        count = 0
        for name, st in _entries(dir_fd):
            path = f"{prefix}{name}"
            if stat.S_ISDIR(st.st_mode):
                sub = _open_at(dir_fd, name, _DIR_FLAGS, st)
                if sub is not None:
                    try:
                        yield from self._walk(sub, f"{path}/", owner, depth + 1)
                    finally:
                        os.close(sub)
            elif stat.S_ISREG(st.st_mode) and st.st_uid == owner:
                entry = self._entry(dir_fd, name, path, st)
                if entry is not None:
                    count += 1
                    if count > MAX_LISTED_FILES:
                        raise ResourceExhausted(
                            f"the work directory holds more than {MAX_LISTED_FILES} files; "
                            "download them by path"
                        )
                    yield entry

    def _entry(self, dir_fd: int, name: str, path: str, st: os.stat_result) -> FileEntry | None:
        fd = _open_at(dir_fd, name, _FILE_FLAGS, st)
        if fd is None:
            return None  # gone or swapped meanwhile
        try:
            st = os.fstat(fd)
            digest = self._sha256(fd, st)
        finally:
            os.close(fd)
        modified = datetime.fromtimestamp(st.st_mtime, UTC)
        return FileEntry(path=path, size=st.st_size, sha256=digest, modified=modified)

    def _sha256(self, fd: int, st: os.stat_result) -> str:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._hashes_lock:
            cached = self._hashes.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        while chunk := os.read(fd, HASH_CHUNK_BYTES):
            digest.update(chunk)
        with self._hashes_lock:
            if len(self._hashes) >= HASH_CACHE_ENTRIES:
                self._hashes.pop(next(iter(self._hashes)))  # the oldest entry
            self._hashes[key] = digest.hexdigest()
        return digest.hexdigest()

    # -- opening --------------------------------------------------------------------------

    def _open_root(self, job_id: str) -> int | None:
        try:
            return os.open(self._layout.workdir(job_id), _DIR_FLAGS)
        except FileNotFoundError:
            return None

    def _open_file(self, job_id: str, parts: list[str], path: str) -> int:
        """A descriptor of the regular file at ``parts``, or a refusal saying why."""
        fd = self._open_root(job_id)
        if fd is None:
            raise NotFound(f"file not found: {path} (the job has no work directory yet)")
        try:
            owner = os.fstat(fd).st_uid
            for i, name in enumerate(parts):
                st = _lstat_at(fd, name, path)
                last = i == len(parts) - 1
                _check_kind(st, path, last, owner)
                opened = _open_at(fd, name, _FILE_FLAGS if last else _DIR_FLAGS, st)
                if opened is None:
                    raise InvalidArgument(f"invalid path {path!r}: it changed while opened")
                os.close(fd)
                fd = opened
            return fd
        except BaseException:
            os.close(fd)
            raise


def relative_parts(path: str) -> list[str]:
    """The components of a path inside the work directory; refuses any that could escape."""
    if not path or "\x00" in path:
        raise InvalidArgument("invalid path: give a file path relative to the work directory")
    if path.startswith("/"):
        raise InvalidArgument(
            f"invalid path {path!r}: must be relative to the job's work directory"
        )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"invalid path {path!r}: must not contain '..'")
    if not parts:
        raise InvalidArgument(f"invalid path {path!r}: names the work directory itself")
    return parts


def _entries(dir_fd: int) -> Iterator[tuple[str, os.stat_result]]:
    with os.scandir(dir_fd) as it:
        for entry in it:
            with contextlib.suppress(FileNotFoundError):
                yield entry.name, entry.stat(follow_symlinks=False)


def _lstat_at(dir_fd: int, name: str, path: str) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise NotFound(f"file not found: {path}") from None


def _check_kind(st: os.stat_result, path: str, last: bool, owner: int) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise InvalidArgument(f"invalid path {path!r}: symbolic links are not followed")
    if not last and not stat.S_ISDIR(st.st_mode):
        raise NotFound(f"file not found: {path}")
    if last and not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"invalid path {path!r}: not a regular file")
    if last and st.st_uid != owner:
        raise InvalidArgument(f"invalid path {path!r}: not a file of the job")


def _open_at(dir_fd: int, name: str, flags: int, expected: os.stat_result) -> int | None:
    """Open ``name`` under ``dir_fd``; None if it is gone or no longer what ``expected`` saw."""
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
            return None
        raise
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)) != (
        expected.st_dev,
        expected.st_ino,
        stat.S_IFMT(expected.st_mode),
    ):
        os.close(fd)
        return None
    return fd


__all__ = ["FileEntry", "JobFiles", "relative_parts"]
