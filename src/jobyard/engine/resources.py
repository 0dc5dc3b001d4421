"""The registry of volumes and runtimes: records in SQLite, storage on the host, and the
:class:`~jobyard.engine.attachments.Attachments` the engine asks about every job."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

from jobyard.domain.access import Identity, visible
from jobyard.domain.errors import FailedPrecondition, InvalidArgument
from jobyard.domain.jobs import JobSpec, utcnow
from jobyard.domain.resources import (
    RUNTIME_DIR,
    VOLUME_TYPES,
    VOLUMES_DIR,
    RuntimeInfo,
    Volume,
    check_name,
    parse_size,
    runtime_not_found,
    volume_not_found,
)
from jobyard.domain.status import TERMINAL, Status
from jobyard.engine.attachments import Attached
from jobyard.engine.runtimes import HostRuntimes
from jobyard.engine.volumes import HostVolumes
from jobyard.runtime.base import Bind
from jobyard.store.base import JobQuery, Store
from jobyard.store.resources import SQLiteResourceStore

UNFINISHED = frozenset(Status) - TERMINAL
MAX_LISTED_JOBS = 100_000


class Registry:
    def __init__(
        self,
        store: SQLiteResourceStore,
        jobs: Store,
        volumes: HostVolumes,
        runtimes: HostRuntimes,
        max_volume_bytes: int,
    ) -> None:
        self._store, self._jobs = store, jobs
        self.host_volumes, self.host_runtimes = volumes, runtimes
        self._max_volume_bytes = max_volume_bytes
        self._lock = asyncio.Lock()  # creations and removals, one at a time

    async def start(self) -> None:
        """Mount every stored volume again (a restart, a reboot)."""
        for volume in self._store.volumes():
            await asyncio.to_thread(self.host_volumes.ensure_mounted, volume)

    # -- what jobs attach ------------------------------------------------------------------

    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        for name in spec.volumes:
            self.volume(name, caller)
        if spec.runtime_env:
            self.runtime(spec.runtime_env)

    def resolve(self, spec: JobSpec) -> Attached:
        self.check(spec, None)
        binds = [
            Bind(self.host_volumes.mount_point(name), f"{VOLUMES_DIR}/{name}", read_only=False)
            for name in spec.volumes
        ]
        if not spec.runtime_env:
            return Attached(tuple(binds))
        tree = self.host_runtimes.tree(spec.runtime_env)
        binds.append(Bind(tree, RUNTIME_DIR, read_only=True))
        return Attached(tuple(binds), (f"{RUNTIME_DIR}/bin",))

    def users(self) -> collections.Counter[str]:
        """Unfinished jobs per volume and per runtime name."""
        jobs, _ = self._jobs.query(JobQuery(statuses=UNFINISHED, page_size=MAX_LISTED_JOBS))
        count: collections.Counter[str] = collections.Counter()
        for job in jobs:
            count.update(f"volume:{v}" for v in job.spec.volumes)
            if job.spec.runtime_env:
                count[f"runtime:{job.spec.runtime_env}"] += 1
        return count

    # -- volumes -----------------------------------------------------------------------------

    def volume(self, name: str, caller: Identity | None) -> Volume:
        """The volume, if ``caller`` may use it (None: anyone); else NotFound, as if absent."""
        for volume in self._store.volumes():
            if volume.name == name and (caller is None or visible(caller, volume)):
                return volume
        raise volume_not_found(name)

    def volumes(self, caller: Identity) -> list[Volume]:
        return [v for v in self._store.volumes() if visible(caller, v)]

    async def create_volume(self, caller: Identity, name: str, size: str, kind: str) -> Volume:
        check_name("volume", name)
        kind = kind or VOLUME_TYPES[0]
        if kind not in VOLUME_TYPES:
            raise InvalidArgument(f"invalid volume type {kind!r}: use {' or '.join(VOLUME_TYPES)}")
        volume = Volume(name, caller.name, caller.project, kind,
                        parse_size(size, self._max_volume_bytes), utcnow())  # fmt: skip
        async with self._lock:
            self._store.add_volume(volume)  # first: the name is taken once, by one caller
            try:
                await self.host_volumes.create(volume)
            except BaseException:
                self._store.remove_volume(name)
                raise
        return volume

    async def remove_volume(self, caller: Identity, name: str) -> Volume:
        async with self._lock:
            volume = self.volume(name, caller)
            using = self.users()[f"volume:{name}"]
            if using:
                raise FailedPrecondition(f"volume {name} is in use by {using} unfinished job(s)")
            await self.host_volumes.remove(volume)
            self._store.remove_volume(name)
        return volume

    # -- runtimes ----------------------------------------------------------------------------

    def runtime(self, name: str) -> RuntimeInfo:
        for info in self._store.runtimes():
            if info.name == name:
                return info
        raise runtime_not_found(name)

    def runtimes(self) -> list[RuntimeInfo]:
        return self._store.runtimes()

    async def install_runtime(self, name: str, path: str) -> RuntimeInfo:
        check_name("runtime", name)
        async with self._lock:
            if any(r.name == name for r in self._store.runtimes()):
                raise FailedPrecondition(f"runtime {name} is installed already")
            info = await self.host_runtimes.install(name, Path(path))
            self._store.add_runtime(info)
        return info

    async def remove_runtime(self, name: str) -> RuntimeInfo:
        async with self._lock:
            info = self.runtime(name)
            using = self.users()[f"runtime:{name}"]
            if using:
                raise FailedPrecondition(f"runtime {name} is in use by {using} unfinished job(s)")
            self._store.remove_runtime(name)
            await self.host_runtimes.remove(name)
        return info
