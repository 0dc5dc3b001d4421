"""Files and directories sent with a job (Joblet's ``FileUpload``), placed in its work
directory before it starts.

Paths are relative to the work directory; absolute paths, ``..`` components and duplicates are
refused, so that no upload lands outside it. Modes keep their permission bits only (setuid,
setgid and sticky are dropped: an upload never grants more than the job user has).
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Sequence

from jobyard.domain.errors import InvalidArgument

MAX_UPLOAD_FILES = 10_000
MAX_UPLOAD_PATH_CHARS = 1024
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
PERMISSION_BITS = 0o777


@dataclasses.dataclass(frozen=True, slots=True)
class Upload:
    path: str  # relative to the work directory, normalized ("a/b.txt")
    content: bytes = b""
    mode: int = 0  # permission bits; 0 = 0644 (files) / 0755 (directories)
    is_directory: bool = False

    @property
    def permissions(self) -> int:
        default = DEFAULT_DIR_MODE if self.is_directory else DEFAULT_FILE_MODE
        return (self.mode & PERMISSION_BITS) or default


def upload_path(path: str) -> str:
    """``path`` normalized, or InvalidArgument when it would leave the work directory."""
    if not path or "\x00" in path or len(path) > MAX_UPLOAD_PATH_CHARS:
        raise InvalidArgument(f"invalid upload path {path!r}: empty, too long or with NUL")
    if path.startswith("/") or "\\" in path:
        raise InvalidArgument(f"invalid upload path {path!r}: must be relative to the job's /work")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidArgument(f"invalid upload path {path!r}: must stay inside the job's /work")
    return "/".join(parts)


def validate_uploads(uploads: Sequence[Upload], max_bytes: int) -> tuple[Upload, ...]:
    """The uploads with normalized paths, checked against the bounds (``max_bytes`` 0 = any)."""
    if len(uploads) > MAX_UPLOAD_FILES:
        raise InvalidArgument(f"invalid uploads: more than {MAX_UPLOAD_FILES} files")
    total = sum(len(u.content) for u in uploads)
    if max_bytes and total > max_bytes:
        raise InvalidArgument(
            f"invalid uploads: {total} bytes exceed the server's limit of {max_bytes} "
            "(maxUploadBytes)"
        )
    out, seen = [], set()
    for upload in uploads:
        path = upload_path(upload.path)
        if path in seen:
            raise InvalidArgument(f"invalid uploads: {path} is sent twice")
        if upload.is_directory and upload.content:
            raise InvalidArgument(f"invalid upload {path}: a directory has no content")
        seen.add(path)
        out.append(dataclasses.replace(upload, path=path))
    by_path = {u.path: u for u in out}
    for path in by_path:
        parent = posixpath.dirname(path)
        while parent:
            if parent in by_path and not by_path[parent].is_directory:
                raise InvalidArgument(f"invalid uploads: {parent} is a file and a directory")
            parent = posixpath.dirname(parent)
    return tuple(out)


def select(uploads: Sequence[Upload], wanted: Sequence[str]) -> tuple[Upload, ...]:
    """The uploads a workflow job names (a directory brings what is under it); a name that
    was not sent is refused."""
    chosen: dict[str, Upload] = {}
    for name in wanted:
        path = upload_path(name)
        found = [u for u in uploads if u.path == path or u.path.startswith(path + "/")]
        if not found:
            raise InvalidArgument(f"upload {name!r} was not sent with the workflow")
        chosen.update((u.path, u) for u in found)
    return tuple(chosen.values())


def top_level(uploads: Sequence[Upload]) -> tuple[str, ...]:
    """The names uploaded into the work directory itself, as a job shows them."""
    return tuple(dict.fromkeys(u.path.split("/", 1)[0] for u in uploads))
