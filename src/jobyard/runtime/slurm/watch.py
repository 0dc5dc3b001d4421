"""Wake-ups when a rank's step writes a state file (``started``, ``done``) on this node.

inotify hears of writes made on this host only: a rank on another node writes to the
shared file system unheard, so the runtime polls as well (the wake-up only makes the
common one-node case immediate). One inotify descriptor serves every watched job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from inotify_simple import INotify, flags

log = logging.getLogger("jobyard.runtime.slurm")

_FLAGS = flags.CREATE | flags.MOVED_TO | flags.CLOSE_WRITE


class StateWatch:
    """Sets the events of those watching a directory whenever a file in it is written."""

    def __init__(self) -> None:
        self._inotify: INotify | None = None
        self._waiters: dict[int, set[asyncio.Event]] = {}  # watch descriptor -> events

    @contextlib.contextmanager
    def watching(self, directories: Sequence[Path]) -> Iterator[asyncio.Event]:
        """An event set when any of ``directories`` changes; unwatched on exit."""
        event = asyncio.Event()
        wds = [wd for wd in map(self._add, directories) if wd is not None]
        for wd in wds:
            self._waiters.setdefault(wd, set()).add(event)
        try:
            yield event
        finally:
            for wd in wds:
                self._remove(wd, event)

    def _add(self, directory: Path) -> int | None:
        if self._inotify is None:
            self._inotify = INotify(nonblocking=True)
            asyncio.get_running_loop().add_reader(self._inotify.fileno(), self._on_events)
        try:
            return int(self._inotify.add_watch(directory, _FLAGS))
        except OSError as exc:  # polling still finds the files
            log.info("no inotify watch | path=%s error=%s", directory, exc)
            return None

    def _remove(self, wd: int, event: asyncio.Event) -> None:
        waiters = self._waiters.get(wd)
        if waiters is None:
            return
        waiters.discard(event)
        if not waiters:
            del self._waiters[wd]
            if self._inotify is not None:
                with contextlib.suppress(OSError):  # gone with its directory
                    self._inotify.rm_watch(wd)

    def _on_events(self) -> None:
        assert self._inotify is not None
        for event in self._inotify.read(timeout=0):
            for waiter in self._waiters.get(event.wd, ()):
                waiter.set()

    def close(self) -> None:
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        self._waiters.clear()


async def woken(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` passed; the event is cleared for the next."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    event.clear()
