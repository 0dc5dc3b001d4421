"""Reading jobs, for every face: output, watches and work-directory files.

:class:`JobReading` is a mixin of :class:`jobyard.engine.jobs.JobEngine`. Each of its
calls takes the caller's identity and looks the job up first, so a job the caller may not
see is "job not found" before anything is streamed, and a watch never carries another
owner's job. Faces (gRPC, HTTP, the dashboard) translate what these yield and nothing else:
offsets, tails, following, snapshot-then-changes are decided here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from jobyard.domain.access import Identity, scope
from jobyard.domain.jobs import Job
from jobyard.engine.events import JobEvents
from jobyard.engine.files import FileEntry, JobFiles
from jobyard.logs import LogHub
from jobyard.store.base import Store

Chunks = AsyncGenerator[tuple[int, bytes], None]


@dataclasses.dataclass(frozen=True, slots=True)
class JobChange:
    """One event of a watch: a job as it stands, from the first snapshot or a change."""

    job: Job
    snapshot: bool = False


class JobReading:
    """Output from offsets or the last lines, following; watches; a job's files."""

    _store: Store
    _hub: LogHub
    _files: JobFiles
    events: JobEvents

    def job(self, caller: Identity, ref: str) -> Job:
        raise NotImplementedError  # JobEngine's

    def jobs(self, caller: Identity) -> list[Job]:
        raise NotImplementedError  # JobEngine's

    # -- output ------------------------------------------------------------------------

    def read_output(
        self,
        caller: Identity,
        ref: str,
        *,
        offset: int = 0,
        tail_lines: int = 0,
        follow: bool = False,
        rank: int = 0,
    ) -> Chunks:
        """Rank ``rank``'s output (rank 0: the job's) as ``(offset, bytes)``, from
        ``offset`` or from the start of the last ``tail_lines`` lines; with ``follow``
        until the job ends.

        The job, the rank and the offset are checked here, before anything is streamed.
        With ``tail_lines`` and nothing to send yet, the first chunk is an empty one at the
        cursor, at once, so that a client knows where it stands.
        """
        job = self.job(caller, ref)
        job.spec.check_rank(rank)
        start = self._hub.start_offset(job.id, offset=offset, tail_lines=tail_lines, rank=rank)
        chunks = self.output(job, follow=follow, offset=start, rank=rank)
        if tail_lines and start == self._hub.size(job.id, rank):
            return _after_cursor(start, chunks)
        return chunks

    def output(self, job: Job, *, follow: bool, offset: int = 0, rank: int = 0) -> Chunks:
        """``(offset, bytes)`` of rank ``rank``'s output of ``job`` (one the caller was
        allowed to look up) from ``offset``; with ``follow`` until the job ends. A rank
        the job lacks is refused here, before anything is streamed."""
        job.spec.check_rank(rank)
        job_id = job.id
        return self._hub.read(
            job_id,
            offset=offset,
            follow=follow,
            ended=lambda: self._store.get(job_id).status.terminal,
            rank=rank,
        )

    # -- watching ----------------------------------------------------------------------

    def watch_jobs(
        self, caller: Identity, refs: Sequence[str] = ()
    ) -> AsyncGenerator[JobChange, None]:
        """A snapshot of the watched jobs, then every change of them.

        With ``refs`` (each looked up now: NotFound for any the caller may not see) the
        stream ends once all of them have ended; without, it carries every job the caller
        may see until the caller leaves. Iterating raises
        :class:`~jobyard.engine.events.WatcherTooSlow` for a watcher left too far behind.
        """
        ids = [self.job(caller, ref).id for ref in refs]
        return self._changes(caller, ids)

    async def _changes(self, caller: Identity, ids: list[str]) -> AsyncGenerator[JobChange, None]:
        limits = scope(caller)
        accept = None if limits is None else limits.admits
        async with self.events.subscribe(ids, accept) as changes:
            # Subscribed before the snapshot is read: no change falls in between.
            snapshot = [self._store.get(i) for i in ids] if ids else self.jobs(caller)
            for job in snapshot:
                yield JobChange(job, snapshot=True)
            unfinished = {job.id for job in snapshot if not job.status.terminal}
            if ids and not unfinished:
                return
            async for job in changes:
                yield JobChange(job)
                if ids and _ended(job, unfinished):
                    return

    # -- files ---------------------------------------------------------------------------

    async def list_files(self, caller: Identity, ref: str) -> list[FileEntry]:
        """Every regular file of the job's work directory (recursive), sorted by path."""
        return await self._files.scan(self.job(caller, ref).id)

    def download(self, caller: Identity, ref: str, path: str) -> AsyncIterator[tuple[int, bytes]]:
        """The bytes of ``path`` in the job's work directory as ``(offset, chunk)``."""
        return self._files.read(self.job(caller, ref).id, path)


async def _after_cursor(start: int, chunks: Chunks) -> Chunks:
    yield start, b""
    async with contextlib.aclosing(chunks):
        async for item in chunks:
            yield item


def _ended(job: Job, unfinished: set[str]) -> bool:
    """Track ``job``'s end; True once no watched job is left unfinished."""
    if job.status.terminal:
        unfinished.discard(job.id)
    return not unfinished


__all__ = ["Chunks", "JobChange", "JobReading"]
