"""jobyard.v1 RPCs: logs (ReadLogs), and the one way job output is sent on any stream.

Every output stream, here and in the seed's GetJobLogs, goes through :func:`send_output`:
each message is handed to gRPC, whose flow control bounds what is buffered for a client
that does not read. A write that gRPC has not accepted within the configured stall timeout
ends that stream with RESOURCE_EXHAUSTED and the offset to resume from; nobody else waits
for it, because every follower reads the file from its own offset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import grpc

from jobyard.api.gen import jobyard_v1_pb2 as pb
from jobyard.domain.errors import ResourceExhausted
from jobyard.engine import JobEngine
from jobyard.logs import LogHub
from jobyard.server.auth import current_identity

Chunks = AsyncGenerator[tuple[int, bytes], None]


async def send_output(
    context: Any,
    hub: LogHub,
    chunks: Chunks,
    message: Callable[[int, bytes], Any],
    *,
    follow: bool,
) -> None:
    """Write ``message(offset, data)`` for each chunk, cutting off a client that stalls.

    A follow that ends because the server is shutting down (not because the job ended)
    ends with UNAVAILABLE, so that clients know to resume.
    """
    timeout = hub.config.follower_stall_timeout_seconds or None
    position = -1
    async with contextlib.aclosing(chunks):
        async for offset, data in chunks:
            try:
                async with asyncio.timeout(timeout):
                    await context.write(message(offset, data))
            except TimeoutError:
                # The message was handed to gRPC and reaches the client ahead of the status.
                raise ResourceExhausted(
                    f"follower too slow: nothing accepted for {timeout:g} s; "
                    f"resume from offset {offset + len(data)}"
                ) from None
            position = offset + len(data)
    if follow and hub.closed:
        where = f"; resume from offset {position}" if position >= 0 else ""
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"server shutting down{where}")


def _log_chunk(offset: int, data: bytes) -> pb.LogChunk:
    return pb.LogChunk(offset=offset, data=data)


class LogRpcs:
    _engine: JobEngine

    async def ReadLogs(self, request: pb.ReadLogsRequest, context: Any) -> AsyncIterator[Any]:
        """Rank ``rank``'s output (rank 0: the job's) from ``offset`` (or the last
        ``tailLines`` lines), following if asked.

        Each chunk carries the offset of its first byte. With ``tailLines`` the first chunk
        comes at once, empty when there is no output yet, so a client knows its cursor.
        """
        chunks = self._engine.read_output(
            current_identity(),
            request.id,
            offset=request.offset,
            tail_lines=request.tailLines,
            follow=request.follow,
            rank=request.rank,
        )
        await send_output(context, self._engine.logs, chunks, _log_chunk, follow=request.follow)
        return
        yield  # the interceptor iterates handlers; this one writes through the context
