"""Reading local files and directories into Joblet ``FileUpload`` messages."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from jobyard.api.gen import joblet_pb2
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.uploads import upload_path

# libyaml's loader where PyYAML has it: the pure-Python one took 4.5 s on a 5,000-job
# workflow before the request was even sent (the server parses with libyaml too).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_uploads(paths: Iterable[str | os.PathLike[str]]) -> list[joblet_pb2.FileUpload]:
    """Each path under its own name in the job's /work (a directory with all it holds)."""
    out: list[joblet_pb2.FileUpload] = []
    for path in map(Path, paths):
        out += _entries(path, path.name or path.resolve().name)
    return out


def workflow_files(document: str, base: Path) -> list[joblet_pb2.FileUpload]:
    """The files a workflow's jobs name in ``uploads: {files: [...]}``, relative to ``base``
    (the YAML file's directory), each sent once."""
    try:
        doc: Any = yaml.load(document, Loader=_Loader)
    except yaml.YAMLError:
        return []  # the server explains what is wrong with the document
    jobs = doc.get("jobs") if isinstance(doc, dict) else None
    names: dict[str, None] = {}
    for body in (jobs or {}).values() if isinstance(jobs, dict) else ():
        files = (body.get("uploads") or {}).get("files") if isinstance(body, dict) else None
        if isinstance(files, list):
            names.update(dict.fromkeys(str(f) for f in files))
    sent: dict[str, joblet_pb2.FileUpload] = {}
    for name in names:
        for msg in _entries(base / upload_path(name), upload_path(name)):
            sent[msg.path] = msg
    return list(sent.values())


def _entries(path: Path, name: str) -> list[joblet_pb2.FileUpload]:
    try:
        info = path.lstat()
    except OSError as exc:
        raise InvalidArgument(f"cannot upload {path}: {exc.strerror}") from exc
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISREG(info.st_mode):
        return [joblet_pb2.FileUpload(path=name, content=path.read_bytes(), mode=mode)]
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgument(f"cannot upload {path}: only regular files and directories")
    out = [joblet_pb2.FileUpload(path=name, mode=mode, isDirectory=True)]
    for child in sorted(path.iterdir()):
        out += _entries(child, f"{name}/{child.name}")
    return out
