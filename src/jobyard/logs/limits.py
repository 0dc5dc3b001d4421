"""Limits on job output, enforced without touching the job's bytes.

A job's processes append to its output file directly, so nothing in the server sees the
bytes go by. Sizes are polled instead: every ``check_interval`` seconds, while jobs are
guarded, each guarded output file is ``stat``-ed (about a microsecond each). Polling costs
the jobs nothing: an inotify watch would, because the kernel then queues an event on every
``write()`` the job makes (measured: +20 % time for a 1 GiB write in 8 KiB pieces).

Three limits are checked:

- the per-job maximum (``max_bytes``): past it, the job is reported once;
- a job's disk limit (``--max-disk``, given to :meth:`OutputLimits.guard`): its output and
  what it holds in /work together; /work counts when it is a file system of its own (the
  local runtime mounts one per disk-limited job), by one ``statvfs``;
- the data disk: output shares it with the server's own records (the job database, exit
  files). A :class:`DiskReserve` file keeps ``reserve_bytes`` back; when a job's output
  fills the disk, the reserve is released so that what happens next can be recorded, and
  each job whose output grew is reported (its writes fail: its output cannot be kept).

A job near its maximum is polled sooner (as if it wrote 1 GB/s, at most every 10 ms), so
how far past it a job gets is about its write rate times (10 ms + the time it takes to stop
it), not times the interval. Whoever is told (the engine) stops the job and records why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from jobyard.domain.errors import ResourceExhausted
from jobyard.domain.status import TerminationReason
from jobyard.logs.layout import JobLayout

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 0.1
MIN_CHECK_INTERVAL_SECONDS = 0.01
# Polls are scheduled for when a job writing at least this fast would reach its maximum.
ASSUMED_WRITE_BYTES_PER_SECOND = 1e9
# The disk counts as full when less than this is left for unprivileged writers (a job's
# write fails once the last block is gone).
DISK_FULL_BYTES = 64 * 1024

MB = 1024 * 1024

# Called at most once per guarded job, with its id, why it cannot go on, and the reason to
# record (OUTPUT_LIMIT or DISK_LIMIT).
OnExceeded = Callable[[str, str, TerminationReason], None]


class DiskReserve:
    """A file holding ``size`` bytes of the data disk back for the server's own records."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size

    @property
    def held(self) -> bool:
        return self.size > 0 and self.path.exists()

    def ensure(self) -> None:
        """Create the reserve if it is missing and the disk has room for it twice over."""
        if self.size <= 0 or self.path.exists() or free_bytes(self.path.parent) < 2 * self.size:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            log.warning("disk reserve not created | path=%s error=%s", self.path, exc)

    def check_room(self) -> None:
        """Refuse new work while the data disk is full: its free space gone, or the reserve
        released and not yet re-made (space has not come back)."""
        self.ensure()
        free = free_bytes(self.path.parent)
        if free >= DISK_FULL_BYTES and (self.size <= 0 or self.held):
            return
        reserved = self.size if self.held else 0
        raise ResourceExhausted(
            f"the data disk is full: {free / MB:.1f} MB free, {reserved / MB:.1f} MB reserved "
            f"for the server's records (needs {2 * self.size / MB:.1f} MB free to re-make a "
            f"{self.size / MB:.1f} MB reserve); new jobs are refused until space is freed"
        )

    def release(self) -> bool:
        """Free the reserved space; True if there was any."""
        if not self.held:
            return False
        self.path.unlink(missing_ok=True)
        log.warning("data disk full: released the %d-byte reserve | path=%s",
                    self.size, self.path)  # fmt: skip
        return True


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class _Guard:
    __slots__ = ("checked", "disk_bytes", "due", "on_exceeded", "rate", "size")

    def __init__(self, on_exceeded: OnExceeded, size: int, now: float, disk_bytes: int) -> None:
        self.on_exceeded, self.size, self.disk_bytes = on_exceeded, size, disk_bytes
        self.checked = self.due = now
        self.rate = 0.0  # bytes per second between the last two checks

    def grew(self, size: int, now: float) -> bool:
        self.rate = (size - self.size) / max(now - self.checked, 1e-6)
        self.size, self.checked = size, now
        return self.rate > 0


class OutputLimits:
    """Reports a guarded job whose output passes ``max_bytes`` (0 = no maximum) or fills
    the data disk."""

    def __init__(
        self,
        layout: JobLayout,
        max_bytes: int,
        reserve_bytes: int = 0,
        check_interval: float = CHECK_INTERVAL_SECONDS,
    ) -> None:
        self._layout = layout
        self.max_bytes = max_bytes
        self.reserve = DiskReserve(layout.reserve, reserve_bytes)
        self._interval = check_interval
        self._guards: dict[str, _Guard] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._started = False

    def start(self) -> None:
        self._started = True
        self.reserve.ensure()

    def close(self) -> None:
        self._started = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._guards.clear()

    @property
    def guarded(self) -> int:
        return len(self._guards)

    def guard(self, job_id: str, on_exceeded: OnExceeded, disk_bytes: int = 0) -> None:
        """Watch ``job_id``'s output until :meth:`release` (or until it is reported);
        ``disk_bytes``: its disk limit, output and /work together (0 = none)."""
        if not self._started or job_id in self._guards:
            return
        self.reserve.ensure()  # space may have been freed since it was last released
        size = self._size(job_id)
        if size is None:
            return  # no output file: nothing to limit
        self._guards[job_id] = _Guard(on_exceeded, size, time.monotonic(), disk_bytes)
        self.check([job_id])  # an adopted job may be past the limit already
        self._schedule()

    def release(self, job_id: str) -> None:
        self._guards.pop(job_id, None)

    def check(self, job_ids: list[str]) -> None:
        """Check these guarded jobs now (also called when a job's processes are gone, so
        that its last bytes count before its end is recorded)."""
        grown: list[tuple[str, int]] = []
        now = time.monotonic()
        for job_id in job_ids:
            guard = self._guards.get(job_id)
            size = None if guard is None else self._size(job_id)
            if guard is None or size is None:
                continue
            if self.max_bytes and size > self.max_bytes:
                self._report(job_id, f"output limit of {self.max_bytes} bytes reached "
                                     f"({size} bytes written)")  # fmt: skip
                continue
            if guard.disk_bytes:
                size += self._work_used(job_id)
                if size > guard.disk_bytes:
                    self._report(job_id, f"disk limit of {guard.disk_bytes // MB} MB reached "
                                         f"({size} bytes in /work and output)",
                                 TerminationReason.DISK_LIMIT)  # fmt: skip
                    continue
            if guard.grew(size, now):
                grown.append((job_id, size))
            guard.due = now + self._delay(guard)
        if grown and free_bytes(self._layout.data_dir) < DISK_FULL_BYTES:
            self.reserve.release()
            for job_id, size in grown:
                self._report(job_id, f"data disk full: output kept up to {size} bytes")

    def _report(
        self, job_id: str, why: str, reason: TerminationReason = TerminationReason.OUTPUT_LIMIT
    ) -> None:
        on_exceeded = self._guards[job_id].on_exceeded
        self.release(job_id)
        on_exceeded(job_id, why, reason)

    def _work_used(self, job_id: str) -> int:
        """Bytes in the job's /work when it is a file system of its own, else 0."""
        work = self._layout.workdir(job_id)
        try:
            if os.stat(work).st_dev == os.stat(work.parent).st_dev:
                return 0
            st = os.statvfs(work)
        except OSError:
            return 0
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def _size(self, job_id: str) -> int | None:
        """The job's output so far: every rank's, since the limit is the job's."""
        sizes = self._layout.output_sizes(job_id)
        if not sizes:
            self.release(job_id)
            return None
        return sum(sizes)

    def _tick(self) -> None:
        self._timer = None
        now = time.monotonic()
        self.check([job_id for job_id, g in self._guards.items() if g.due <= now])
        self._schedule()

    def _schedule(self) -> None:
        """Arm the poll for the soonest check a guarded job needs."""
        if not self._guards or not self._started:
            return
        soonest = min(guard.due for guard in self._guards.values())
        delay = max(soonest - time.monotonic(), 0.0)
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            if self._timer.when() <= loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._tick)

    def _delay(self, guard: _Guard) -> float:
        """Seconds until this job's next check: sooner as a fast writer nears the maximum,
        so that how far past it a job gets does not grow with the interval."""
        delay = self._interval
        rate = max(guard.rate, ASSUMED_WRITE_BYTES_PER_SECOND)
        for limit in (self.max_bytes, guard.disk_bytes):
            if limit:
                delay = min(delay, (limit - guard.size) / rate)
        return max(delay, MIN_CHECK_INTERVAL_SECONDS)
