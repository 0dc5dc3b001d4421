"""What a job may attach besides its command: named volumes and runtimes.

The engine asks an :class:`Attachments` before it accepts a job (so a job naming something
that does not exist is refused before anything runs, naming what is missing) and again when
it launches the job (for the mounts and PATH entries to give it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from jobyard.domain.access import Identity
from jobyard.domain.errors import NotFound
from jobyard.domain.jobs import JobSpec


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    """A host directory to bind into the job at ``target``."""

    source: Path
    target: str
    read_only: bool


class Attachments(Protocol):
    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        """Raise NotFound naming the first volume or runtime ``caller`` cannot use
        (``None``: a job already accepted, not scoped again)."""

    def resolve(self, spec: JobSpec) -> tuple[Attachment, ...]:
        """The binds of an accepted job, in mount order."""


class NoAttachments:
    """A server with no volume or runtime registry: naming one refuses the job."""

    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        for name in spec.volumes:
            raise NotFound(f"volume not found: {name}")
        if spec.runtime_env:
            raise NotFound(f"runtime not found: {spec.runtime_env}")

    def resolve(self, spec: JobSpec) -> tuple[Attachment, ...]:
        return ()
