"""What a job may attach besides its command: named volumes, a runtime, a network.

The engine asks an :class:`Attachments` before it accepts a job (so a job naming something
that does not exist, or that its caller may not use, is refused before anything runs, naming
what is missing), attaches them when it launches the job (binds, PATH entries, a prepared
network namespace) and releases them once the job's processes are gone.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from jobyard.domain.access import Identity
from jobyard.domain.jobs import NETWORK_HOST, NETWORK_NONE, NETWORKS, JobSpec
from jobyard.domain.resources import network_not_found, runtime_not_found, volume_not_found
from jobyard.runtime.base import Bind


@dataclasses.dataclass(frozen=True, slots=True)
class Attached:
    """What a launched job gets: binds in mount order, directories first on its PATH and the
    network namespace its ranks enter ("": the runtime's own choice, from ``spec.network``)."""

    binds: tuple[Bind, ...] = ()
    path_prefix: tuple[str, ...] = ()
    netns: str = ""


def attaches(spec: JobSpec) -> bool:
    """Whether the job names a volume, a runtime or a network of its own."""
    return bool(spec.volumes or spec.runtime_env) or spec.network not in (
        NETWORK_HOST, NETWORK_NONE,
    )  # fmt: skip


class Attachments(Protocol):
    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        """Raise NotFound naming the first volume or runtime ``caller`` cannot use
        (``None``: a job already accepted, not scoped again)."""

    async def attach(self, job_id: str, spec: JobSpec) -> Attached:
        """Prepare what an accepted job attaches (NotFound if something has gone since)."""

    async def release(self, job_id: str) -> None:
        """Undo :meth:`attach` once the job's processes are gone (idempotent)."""


class NoAttachments:
    """A server with no registry: naming a volume, runtime or network refuses the job.

    ``isolated`` is a plain new network namespace here, like ``none``."""

    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        for name in spec.volumes:
            raise volume_not_found(name)
        if spec.runtime_env:
            raise runtime_not_found(spec.runtime_env)
        if spec.network not in NETWORKS:
            raise network_not_found(spec.network)

    async def attach(self, job_id: str, spec: JobSpec) -> Attached:
        self.check(spec, None)
        return Attached()

    async def release(self, job_id: str) -> None:
        return None
