"""Backends: the engine's registry of runtimes, keyed by the backend name a job records.

A server has one or more backends (``local``, ``slurm``); a job that names none runs on the
default one. Unknown names are refused at submit with the names this server has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from jobyard.domain.errors import InvalidArgument
from jobyard.runtime.base import Runtime


class Backends:
    """Runtimes by name; ``default`` (the first given when omitted) runs unnamed jobs."""

    def __init__(self, runtimes: Iterable[Runtime], default: str = "") -> None:
        self._runtimes: dict[str, Runtime] = {}
        for runtime in runtimes:
            if runtime.name in self._runtimes:
                raise InvalidArgument(f"backend {runtime.name!r} given twice")
            self._runtimes[runtime.name] = runtime
        if not self._runtimes:
            raise InvalidArgument("a server needs at least one backend")
        self.default = default or next(iter(self._runtimes))
        if self.default not in self._runtimes:
            raise InvalidArgument(f"default backend {self.default!r} is not one of {self.names}")

    @classmethod
    def of(cls, runtime: Runtime | Backends) -> Backends:
        return runtime if isinstance(runtime, Backends) else cls([runtime])

    @property
    def names(self) -> str:
        return ", ".join(self._runtimes)

    def resolve(self, requested: str) -> str:
        """The backend a job asking for ``requested`` ("" = the default) runs on."""
        name = requested or self.default
        if name not in self._runtimes:
            raise InvalidArgument(f"invalid backend {name!r}: this server has {self.names}")
        return name

    def __getitem__(self, name: str) -> Runtime:
        try:
            return self._runtimes[name]
        except KeyError:
            raise InvalidArgument(
                f"invalid backend {name!r}: this server has {self.names}"
            ) from None

    def __iter__(self) -> Iterator[Runtime]:
        return iter(self._runtimes.values())

    def __len__(self) -> int:
        return len(self._runtimes)


__all__ = ["Backends"]
