"""Reading job output by offset through jobyard.v1 ReadLogs (mixed into :class:`Client`).

Every chunk carries the offset of its first byte, so a reader always knows its cursor and
can resume exactly after it: :meth:`LogMethods.read_logs` does so by itself when asked to
``reconnect`` (a server restart, a network cut, or being cut off as a too-slow follower).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from jobyard.api.gen import jobyard_v1_pb2, jobyard_v1_pb2_grpc
from jobyard.client.base import Connected
from jobyard.client.errors import error_from_rpc

# Codes after which the same read can go on from its offset: the server was unreachable or
# going away, or it cut this follower off for not reading fast enough.
RESUMABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class LogChunk:
    """``data`` is the job's output from byte ``offset`` on (stdout and stderr merged)."""

    offset: int
    data: bytes

    @property
    def end(self) -> int:
        """The offset right after this chunk: where reading resumes."""
        return self.offset + len(self.data)


class Backoff:
    """Delays between attempts: doubling up to ``cap``; gives up after ``budget`` seconds
    without progress (``reset`` counts as progress)."""

    def __init__(self, budget: float, first: float = FIRST_RETRY_SECONDS,
                 cap: float = MAX_RETRY_SECONDS) -> None:  # fmt: skip
        self.budget, self._first, self._cap = budget, first, cap
        self.reset()

    def reset(self) -> None:
        self._delay = self._first
        self._since = time.monotonic()

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent."""
        left = self._since + self.budget - time.monotonic()
        if left <= 0:
            return None
        delay = min(self._delay, left)
        self._delay = min(self._delay * 2, self._cap)
        return delay


class LogMethods(Connected):
    """Client methods for jobyard.v1 ReadLogs."""

    settings: Any  # provided by Client (ClientSettings)

    def read_logs(
        self,
        id: str,
        offset: int = 0,
        tail: int = 0,
        follow: bool = False,
        *,
        reconnect: float = 0.0,
        on_retry: Callable[[str], None] | None = None,
        rank: int = 0,
    ) -> Iterator[LogChunk]:
        """The job's output as :class:`LogChunk` s, from byte ``offset`` or from the start of
        the last ``tail`` lines; with ``follow``, live output until the job ends. ``rank``
        picks one replica's output (0, the default, is the job's output); offsets are
        within that rank's output.

        With ``reconnect`` > 0, a stream that breaks (server restart, network, cut off as
        too slow) is resumed from the next byte after the last chunk received, with backoff,
        for up to ``reconnect`` seconds without progress; ``on_retry`` is told each time.
        Every byte is yielded exactly once either way.

        >>> for chunk in client.read_logs(job_id, tail=10, follow=True):  # doctest: +SKIP
        ...     print(chunk.offset, chunk.data)
        """
        backoff = Backoff(reconnect)
        position: int | None = None if tail else offset
        while True:
            try:
                start, lines = (offset, tail) if position is None else (position, 0)
                for chunk in self._read_once(id, start, lines, follow, rank):
                    position = chunk.end
                    backoff.reset()
                    if chunk.data:
                        yield chunk
                return
            except grpc.RpcError as exc:
                delay = backoff.next_delay() if exc.code() in RESUMABLE_CODES else None
                if delay is None:
                    raise error_from_rpc(exc, self.settings.server) from exc
                if on_retry is not None:
                    on_retry(_retry_notice(exc, position, delay))
                time.sleep(delay)

    def _read_once(
        self, id: str, offset: int, tail: int, follow: bool, rank: int = 0
    ) -> Iterator[LogChunk]:
        """One ReadLogs call, opened at the first ``next()``; cancelled if left early."""
        stub = jobyard_v1_pb2_grpc.JobyardServiceStub(self._channel)
        request = jobyard_v1_pb2.ReadLogsRequest(
            id=id, offset=offset, tailLines=tail, follow=follow, rank=rank
        )
        call = stub.ReadLogs(request)
        try:
            for msg in call:
                yield LogChunk(msg.offset, msg.data)
        finally:
            call.cancel()


def _retry_notice(exc: grpc.RpcError, position: int | None, delay: float) -> str:
    reason = exc.details() or exc.code().name
    where = "the start" if position is None else f"offset {position}"
    return f"log stream interrupted ({reason}); resuming from {where} in {delay:.1f} s"
