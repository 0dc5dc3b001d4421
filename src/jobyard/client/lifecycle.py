"""The SDK's lifecycle methods (mixed into :class:`jobyard.client.Client`) and their values.

Waiting is driven by the server's event feed (``jobyard.v1 WatchJobs``: a snapshot, then each
change), never by polling: :meth:`LifecycleMethods.wait` returns on the event that shows the
job ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import grpc

from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.api.gen import jobyard_v1_pb2_grpc as v1_grpc
from jobyard.client.base import Connected
from jobyard.client.errors import error_from_rpc
from jobyard.client.jobs import Job, StopResult
from jobyard.client.logs import Backoff
from jobyard.client.settings import ClientSettings
from jobyard.domain.errors import JobyardError
from jobyard.domain.jobs import rfc3339

# Pause before watching again when the server closed a watch early (shutting down, or it
# dropped a watcher that fell behind).
RESUBSCRIBE_PAUSE_SECONDS = 0.2
# How long wait() keeps trying to reach a server it was talking to (a restart), without
# hearing from it, before it gives up.
WAIT_RECONNECT_SECONDS = 30.0

PathArg = str | os.PathLike[str]
TimeArg = datetime | str | None


@dataclasses.dataclass(frozen=True, slots=True)
class JobEvent:
    """One message of a watch: the job as it now stands; ``snapshot`` for the initial state."""

    job: Job
    snapshot: bool


@dataclasses.dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a filtered listing, newest first; ``next_page_token`` is "" on the last."""

    jobs: tuple[Job, ...]
    next_page_token: str


@dataclasses.dataclass(frozen=True, slots=True)
class JobFile:
    """A regular file in a job's work directory (JuliaHub ``JobFile`` with its ``FileHash``)."""

    path: str  # relative to the work directory
    size: int
    sha256: str
    modified: str  # RFC 3339

    @classmethod
    def from_proto(cls, msg: v1.FileInfo) -> JobFile:
        return cls(path=msg.path, size=msg.size, sha256=msg.sha256, modified=msg.modified)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LifecycleMethods(Connected):
    """Client methods for jobyard.v1: extend, delete, list, watch, wait, files, download."""

    settings: ClientSettings
    timeout: float | None

    @property
    def _v1(self) -> v1_grpc.JobyardServiceStub:
        return v1_grpc.JobyardServiceStub(self._channel)

    def extend(self, id: str, seconds: float) -> Job:
        """Give an unfinished job ``seconds`` more wall time; returns it with its new expiry."""
        request = v1.ExtendJobRequest(id=id, seconds=whole_seconds(seconds))
        return Job.from_details(self._unary(self._v1.ExtendJob, request))

    def delete(self, id: str) -> str:
        """Remove a finished job with its output and files (admin); returns its full id."""
        return str(self._unary(self._v1.DeleteJob, v1.JobRef(id=id)).id)

    def list_jobs(
        self,
        *,
        status: Iterable[str] = (),
        name: str = "",
        labels: Mapping[str, str] | None = None,
        owner: str = "",
        created_after: TimeArg = None,
        created_before: TimeArg = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> JobPage:
        """One page of the jobs matching every filter given, newest first."""
        request = v1.ListJobsRequest(
            statuses=[status] if isinstance(status, str) else list(status),
            name=name,
            labels=dict(labels or {}),
            owner=owner,
            createdAfter=time_arg(created_after),
            createdBefore=time_arg(created_before),
            pageSize=page_size,
            pageToken=page_token,
        )
        res = self._unary(self._v1.ListJobs, request)
        jobs = tuple(Job.from_details(d) for d in res.jobs)
        return JobPage(jobs=jobs, next_page_token=res.nextPageToken)

    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job matching ``filters`` (as :meth:`list_jobs`), newest first, page by page."""
        token = ""
        while True:
            page = self.list_jobs(**filters, page_token=token)
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def watch(self, ids: Iterable[str] = (), *, timeout: float | None = None) -> Iterator[JobEvent]:
        """The watched jobs' current state (``snapshot``), then every change as it happens.

        With ``ids`` the iterator ends once all of them have ended; without, it watches every
        job until the caller stops iterating.
        """
        call = self._v1.WatchJobs(v1.WatchJobsRequest(ids=list(ids)), timeout=timeout)
        try:
            for event in call:
                yield JobEvent(job=Job.from_details(event.job), snapshot=event.snapshot)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(exc.details() or "deadline exceeded") from exc
            raise error_from_rpc(exc, self.settings.server) from exc
        finally:
            call.cancel()  # ends the RPC when the caller stops early

    def wait(
        self,
        id: str,
        timeout: float | None = None,
        *,
        on_event: Callable[[JobEvent], None] | None = None,
    ) -> Job:
        """Block until the job has ended and return it; ``TimeoutError`` after ``timeout`` s.

        A watch the server closes early is opened again (a fresh snapshot); a server that
        restarts is waited for, up to ``WAIT_RECONNECT_SECONDS`` without hearing from it.
        ``on_event`` is told every state the watch reports (snapshots included), e.g. to show
        progress: the first call means the server is watching the job for us.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff, reached = Backoff(WAIT_RECONNECT_SECONDS), False
        while True:
            left = _remaining(deadline)
            if left is not None and left <= 0:
                raise TimeoutError(f"job {id} did not end within {timeout:g} s")
            pause = RESUBSCRIBE_PAUSE_SECONDS  # the server closed the watch before the end
            try:
                for event in self.watch([id], timeout=left):
                    reached = True
                    backoff.reset()
                    if on_event is not None:
                        on_event(event)
                    if event.job.done:
                        return event.job
            except TimeoutError:
                raise TimeoutError(f"job {id} did not end within {timeout:g} s") from None
            except JobyardError as exc:
                delay = _retry_delay(exc, reached, backoff)
                if delay is None:
                    raise
                pause = delay
            time.sleep(pause if left is None else max(0.0, min(pause, left)))

    def isdone(self, job: Job | StopResult | str) -> bool:
        """Whether the job has ended (COMPLETED, FAILED or STOPPED).

        Given a job (or stop result) this looks at it as it was returned; given an id it asks
        the server for the job's state now (one watch snapshot).
        """
        if not isinstance(job, str):
            return job.done
        for event in self.watch([job], timeout=self.timeout):
            return event.job.done
        raise JobyardError(f"the server sent no state for job {job}")

    def files(self, id: str) -> list[JobFile]:
        """The regular files in the job's work directory, with size and SHA-256."""
        res = self._unary(self._v1.ListFiles, v1.JobRef(id=id))
        return [JobFile.from_proto(f) for f in res.files]

    def download(self, id: str, path: str, dest: PathArg | IO[bytes]) -> int:
        """Stream one file of the job's work directory to ``dest``; returns its size.

        ``dest`` is a file object, a file path (written whole or not at all) or a directory
        (the file keeps its name).
        """
        call = self._v1.DownloadFile(v1.DownloadFileRequest(id=id, path=path), timeout=None)
        if not isinstance(dest, str | os.PathLike):
            return self._copy(call, dest, path)
        target = Path(dest)
        if target.is_dir():
            target = target / Path(path).name
        part = target.with_name(f".{target.name}.part")
        try:
            with part.open("wb") as out:
                size = self._copy(call, out, path)
            part.replace(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        return size

    def _copy(self, call: Any, out: IO[bytes], path: str) -> int:
        written = 0
        try:
            for chunk in call:
                if chunk.offset != written:
                    raise JobyardError(f"download of {path} broke off at byte {written}")
                out.write(chunk.data)
                written += len(chunk.data)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.settings.server) from exc
        finally:
            call.cancel()
        return written


def _retry_delay(exc: JobyardError, reached: bool, backoff: Backoff) -> float | None:
    """How long to pause before watching again after ``exc``, or None to give up."""
    cause = exc.__cause__
    code = cause.code() if isinstance(cause, grpc.RpcError) else None
    if code is grpc.StatusCode.ABORTED:  # dropped for falling behind
        return RESUBSCRIBE_PAUSE_SECONDS
    if code is grpc.StatusCode.UNAVAILABLE and reached:  # restarting, or the network
        return backoff.next_delay()
    return None


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def whole_seconds(seconds: float) -> int:
    """Round a positive fraction up (``0.5`` s asks for 1 s, never for nothing)."""
    whole = int(seconds)
    return whole + 1 if seconds > whole else whole


def time_arg(value: TimeArg) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    return value or ""


__all__ = ["JobEvent", "JobFile", "JobPage", "LifecycleMethods"]
