"""``jobs.follow`` over a WebSocket at ``/api/jobs`` (UCloud's envelope).

The client sends ``{"call": "jobs.follow", "streamId": S, "payload": {"id": JOB},
"bearer": TOKEN}``; the server answers ``{"type": "message", "streamId": S, "payload":
JobsFollowResponse}`` — ``initialJob`` first, then ``updates``/``newStatus`` on each change
and ``log: [{rank, stdout, stderr}]`` as output arrives — and finally ``{"type":
"response", "status": 200, "streamId": S, "payload": {}}`` once the job has ended and its
output is sent, or when the client cancels (``payload: {"type": "cancel"}`` on the same
streamId). A refused call gets a response with UCloud's error body and its status.

Slow clients: each connection has one bounded outbox. Producers wait for room at most the
log follower stall timeout; a client that reads nothing for that long is disconnected with
close code 1008 and a reason saying so. The engine never waits for anyone: its events reach
this connection through a bounded, drop-on-overflow subscription.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from jobyard.api.errors import http_status_for, public_message
from jobyard.domain.access import Identity
from jobyard.domain.errors import InvalidArgument, JobyardError, ResourceExhausted
from jobyard.domain.jobs import Job
from jobyard.engine.events import WatcherTooSlow
from jobyard.http.auth import identify
from jobyard.http.errors import error_body
from jobyard.http.face import HttpFace, Json
from jobyard.http.views import job_status, job_view, updates

log = logging.getLogger("jobyard.http")
router = APIRouter()

OUTBOX_MESSAGES = 32
LOG_MESSAGE_CHARS = 64 * 1024  # 32 x 64 KiB: what one connection may have buffered
MAX_STREAMS = 16
MAX_STREAM_ID_CHARS = 128
CLOSE_TOO_SLOW = 1008
CLOSE_GRACE_SECONDS = 1.0


class ClientTooSlow(Exception):
    pass


@router.websocket("/api/jobs")
async def follow_socket(websocket: WebSocket) -> None:
    """UCloud's WebSocket calls; ``jobs.follow`` is the one this face serves."""
    await websocket.accept()
    face: HttpFace = websocket.app.state.face
    connections = face.metrics.connections.labels("jobs.follow")
    connections.inc()
    try:
        await Connection(websocket, face).serve()
    finally:
        connections.dec()


class Connection:
    """One client's socket: its streams, and the one writer draining its outbox."""

    def __init__(self, websocket: WebSocket, face: HttpFace) -> None:
        self._ws = websocket
        self._face = face
        self._outbox: asyncio.Queue[Json] = asyncio.Queue(OUTBOX_MESSAGES)
        self._streams: dict[str, asyncio.Task[None]] = {}
        stall = face.engine.logs.config.follower_stall_timeout_seconds
        self._stall = stall or None
        self._too_slow = asyncio.Event()

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write())
        reader = asyncio.create_task(self._read())
        slow = asyncio.create_task(self._too_slow.wait())
        try:
            await asyncio.wait({writer, reader, slow}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, reader, slow, *self._streams.values()):
                task.cancel()
            await asyncio.gather(writer, reader, slow, *self._streams.values(),
                                 return_exceptions=True)  # fmt: skip
        if self._too_slow.is_set():
            self._face.slow_clients.add()
            log.warning("websocket client too slow: disconnected | stall=%ss", self._stall)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                    await self._ws.close(CLOSE_TOO_SLOW, "client too slow: messages not read")

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            await self._ws.send_text(json.dumps(message))

    async def send(self, message: Json) -> None:
        """Queue ``message``; a client that leaves no room for the stall timeout is dropped."""
        try:
            async with asyncio.timeout(self._stall):
                await self._outbox.put(message)
        except TimeoutError:
            self._too_slow.set()
            raise ClientTooSlow from None

    async def _read(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:  # a binary frame: UCloud's calls are JSON text
                    why = "invalid message: send JSON as a text frame"
                    await self.send(response("", 400, error_body(why, "INVALID_ARGUMENT")))
                    continue
                await self.dispatch(text)

    async def dispatch(self, text: str) -> None:
        """One client message: start or cancel a stream (a subclass serves other calls)."""
        try:
            call, stream_id, payload, bearer = envelope(text)
        except InvalidArgument as exc:
            await self.send(response("", 400, error_body(str(exc), "INVALID_ARGUMENT")))
            return
        if payload.get("type") == "cancel":
            await self.cancel(stream_id)
            return
        if call != "jobs.follow":
            why = f"unknown call {call[:64]!r}: this socket serves jobs.follow"
            await self.send(response(stream_id, 404, error_body(why, "NOT_FOUND")))
            return
        await self.start_stream(stream_id, self._follow(stream_id, payload, bearer))

    async def start_stream(self, stream_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as stream ``stream_id`` (refused if in use or too many are open)."""
        if stream_id in self._streams or len(self._streams) >= MAX_STREAMS:
            work.close()
            why = f"streamId {stream_id!r} in use, or more than {MAX_STREAMS} streams open"
            await self.send(response(stream_id, 409, error_body(why, "FAILED_PRECONDITION")))
            return
        task = asyncio.create_task(work)
        self._streams[stream_id] = task
        task.add_done_callback(lambda _: self._streams.pop(stream_id, None))

    async def cancel(self, stream_id: str) -> None:
        task = self._streams.pop(stream_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.send(response(stream_id, 200, {}))

    async def _follow(self, stream_id: str, payload: Json, bearer: str) -> None:
        try:
            identity = identify(self._face.tokens, bearer)
            job_id = payload.get("id")
            if not isinstance(job_id, str) or not job_id or len(job_id) > 64:
                raise InvalidArgument("invalid payload: id (the job's id) is required")
            self._face.job(identity, job_id, "read_logs")
            job = self._face.job(identity, job_id, "watch_jobs")
            await Follow(self, stream_id, self._face).run(identity, job.id)
        except ClientTooSlow:
            return
        except (JobyardError, WatcherTooSlow) as exc:
            if isinstance(exc, WatcherTooSlow):
                exc = ResourceExhausted(str(exc))
            status, code = http_status_for(exc)
            await self.send(response(stream_id, status, error_body(public_message(exc), code)))
            return
        except Exception:  # a bug: the stream ends with a 500, the trace goes to the log only
            log.exception("follow failed | streamId=%s", stream_id[:MAX_STREAM_ID_CHARS])
            await self.send(response(stream_id, 500, error_body("internal error", "INTERNAL")))
            return
        await self.send(response(stream_id, 200, {}))


class Follow:
    """One stream: a job's snapshot, its changes and every rank's output, until it ends."""

    def __init__(self, connection: Connection, stream_id: str, face: HttpFace) -> None:
        self._conn = connection
        self._id = stream_id
        self._face = face

    async def _message(self, **payload: Any) -> None:
        body = {"updates": [], "log": [], "newStatus": None, "initialJob": None, **payload}
        await self._conn.send({"type": "message", "streamId": self._id, "payload": body})

    async def run(self, caller: Identity, job_id: str) -> None:
        engine = self._face.engine
        changes = engine.watch_jobs(caller, [job_id])  # the snapshot, then each change
        readers: list[asyncio.Task[None]] = []
        sent = 0
        try:
            async with contextlib.aclosing(changes):
                async for change in changes:
                    job = change.job
                    if change.snapshot:
                        view = job_view(job, self._face.specs.get(job.id))
                        await self._message(initialJob=view)
                        sent = len(view["updates"])
                        readers = [asyncio.create_task(self._output(caller, job, rank))
                                   for rank in range(job.spec.replicas)]  # fmt: skip
                        continue
                    history = updates(job)
                    if len(history) > sent:
                        await self._message(updates=history[sent:], newStatus=job_status(job))
                        sent = len(history)
            await asyncio.gather(*readers)  # the watch ended with the job: drain its output
        finally:
            for reader in readers:
                reader.cancel()

    async def _output(self, caller: Identity, job: Job, rank: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        chunks = self._face.engine.read_output(caller, job.id, follow=True, rank=rank)
        async with contextlib.aclosing(chunks):
            async for _, data in chunks:
                text = decoder.decode(data)
                for start in range(0, len(text), LOG_MESSAGE_CHARS):
                    piece = text[start : start + LOG_MESSAGE_CHARS]
                    await self._message(log=[{"rank": rank, "stdout": piece, "stderr": None}])


def response(stream_id: str, status: int, payload: Json) -> Json:
    return {"type": "response", "status": status, "streamId": stream_id, "payload": payload}


def envelope(text: str) -> tuple[str, str, Json, str]:
    """``(call, streamId, payload, bearer)`` of a client message; InvalidArgument if bad."""
    try:
        message = json.loads(text)
    except ValueError:
        raise InvalidArgument("invalid message: malformed JSON") from None
    if not isinstance(message, dict):
        raise InvalidArgument("invalid message: expected an object {call, streamId, payload}")
    call, stream_id = message.get("call"), message.get("streamId")
    payload, bearer = message.get("payload"), message.get("bearer", "")
    if not isinstance(stream_id, str) or not 0 < len(stream_id) <= MAX_STREAM_ID_CHARS:
        raise InvalidArgument(f"invalid streamId: 1-{MAX_STREAM_ID_CHARS} characters required")
    if not isinstance(call, str) or not isinstance(payload, dict):
        raise InvalidArgument("invalid message: call (a string) and payload (an object)")
    if not isinstance(bearer, str):
        raise InvalidArgument("invalid bearer: must be a string")
    return call, stream_id, payload, bearer
