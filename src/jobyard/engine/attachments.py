"""What a job may attach besides its command: named volumes, a runtime, a network.

The engine asks an :class:`Attachments` before it accepts a job (so a job naming something
that does not exist, or that its caller may not use, is refused before anything runs, naming
what is missing) and again when it launches the job (for the binds and PATH entries to give
it).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from jobyard.domain.access import Identity
from jobyard.domain.jobs import JobSpec
from jobyard.domain.resources import runtime_not_found, volume_not_found
from jobyard.runtime.base import Bind


@dataclasses.dataclass(frozen=True, slots=True)
class Attached:
    """What a launched job gets: binds in mount order and directories first on its PATH."""

    binds: tuple[Bind, ...] = ()
    path_prefix: tuple[str, ...] = ()


class Attachments(Protocol):
    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        """Raise NotFound naming the first volume or runtime ``caller`` cannot use
        (``None``: a job already accepted, not scoped again)."""

    def resolve(self, spec: JobSpec) -> Attached:
        """The binds of an accepted job (NotFound if one has gone since)."""


class NoAttachments:
    """A server with no volume or runtime registry: naming one refuses the job."""

    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        for name in spec.volumes:
            raise volume_not_found(name)
        if spec.runtime_env:
            raise runtime_not_found(spec.runtime_env)

    def resolve(self, spec: JobSpec) -> Attached:
        self.check(spec, None)
        return Attached()
