"""Runtimes on the host: trees installed from a local path, given to jobs read-only.

::

    DATA/runtimes/NAME/         a copy of the tree the admin installed (root's, read-only to
                                jobs): bin/ goes first on a job's PATH; runtime.yml, when
                                present, describes it (language, version, description,
                                packages, test: [argv])

A job naming a runtime sees the tree at ``/runtime`` and ``/runtime/bin`` first on its PATH;
TestRuntime runs the runtime's test command as such a job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from jobyard.domain.access import Identity
from jobyard.domain.errors import FailedPrecondition, InvalidArgument
from jobyard.domain.jobs import JobSpec, utcnow
from jobyard.domain.resources import RUNTIME_DIR, RuntimeInfo
from jobyard.domain.status import Status
from jobyard.engine.jobs import JobEngine

log = logging.getLogger("jobyard.runtimes")

MANIFEST = "runtime.yml"
MAX_MANIFEST_BYTES = 64 << 10
TEST_TIMEOUT_SECONDS = 30
MAX_TEST_OUTPUT_BYTES = 64 << 10


class HostRuntimes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def tree(self, name: str) -> Path:
        return self.root / name

    async def install(self, name: str, source: Path) -> RuntimeInfo:
        return await asyncio.to_thread(self._install, name, source)

    def _install(self, name: str, source: Path) -> RuntimeInfo:
        if not source.is_absolute() or not source.is_dir():
            raise InvalidArgument(f"invalid path {str(source)!r}: not a directory on the server")
        if not (source / "bin").is_dir():
            raise InvalidArgument(f"invalid runtime {str(source)!r}: it has no bin/ directory")
        manifest = _manifest(source)
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        target = self.tree(name)
        if target.exists():
            raise FailedPrecondition(f"runtime {name} is installed already")
        try:
            shutil.copytree(source, target, symlinks=True)
            target.chmod(0o755)
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise InvalidArgument(f"cannot copy {source}: {exc.strerror or exc}") from exc
        size = sum(p.lstat().st_size for p in target.rglob("*"))
        log.info("runtime installed | runtime=%s from=%s sizeBytes=%d", name, source, size)
        return RuntimeInfo(
            name=name, language=str(manifest.get("language", "")),
            version=str(manifest.get("version", "")),
            description=str(manifest.get("description", "")),
            packages=tuple(str(p) for p in manifest.get("packages") or ()),
            test=tuple(str(a) for a in manifest.get("test") or ()),
            size_bytes=size, created_at=utcnow(),
        )  # fmt: skip

    async def remove(self, name: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.tree(name), True)


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeTestResult:
    success: bool
    output: str
    exit_code: int
    job_id: str


async def test_in_job(engine: JobEngine, caller: Identity, info: RuntimeInfo) -> RuntimeTestResult:
    """Run the runtime's test command as a job of ``caller`` with the runtime attached, as
    any job gets it (read-only at /runtime, bin/ first on PATH, the job's own uid). Without
    a test command: bin/ must hold something."""
    argv = info.test or (
        "sh",
        "-c",
        f'test -n "$(ls -A {RUNTIME_DIR}/bin)" && ls -1 {RUNTIME_DIR}/bin',
    )
    spec = JobSpec(
        command=argv[0], args=tuple(argv[1:]), name=f"runtime-test-{info.name}"[:128],
        runtime_env=info.name, time_limit_seconds=TEST_TIMEOUT_SECONDS,
    )  # fmt: skip
    async with engine.events.subscribe(accept=lambda j: j.spec.runtime_env == info.name) as seen:
        job = await engine.submit(caller, spec)
        async with asyncio.timeout(TEST_TIMEOUT_SECONDS * 2):  # the time limit ends it first
            # Every change since before the submit is queued: the end cannot be missed.
            async for changed in seen:
                job = changed if changed.id == job.id else job
                if job.status.terminal:
                    break
    with open(engine.layout.output(job.id), "rb") as f:
        output = f.read(MAX_TEST_OUTPUT_BYTES).decode(errors="replace")
    code = -1 if job.exit_code is None else job.exit_code
    return RuntimeTestResult(job.status is Status.COMPLETED, output, code, job.id)


def _manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not path.is_file():
        return {}
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidArgument(f"invalid {MANIFEST}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"invalid {MANIFEST}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid {MANIFEST}: expected a mapping")
    for key in ("packages", "test"):
        if not isinstance(doc.get(key) or [], list):
            raise InvalidArgument(f"invalid {MANIFEST}: {key} must be a list")
    return doc
