"""``jobs.provider.{providerId}.follow`` over a WebSocket at ``/ucloud/{providerId}/websocket``.

Core sends UCloud's envelope ``{call, streamId, payload, bearer}`` with a
JobsProviderFollowRequest payload: ``{type: "init", job: Job}`` starts a session,
``{type: "cancel", streamId}`` ends one. A session answers
``{type: "message", streamId, payload: {streamId, rank, stdout, stderr}}`` for each piece of
output of each rank (UTF-8; invalid bytes dropped), where the payload's ``streamId`` is the
session's own (a UUID, what CancelStream names), then ``{type: "response", status: 200}``
once the job has ended and its output is sent, or when cancelled. The connection, its
bounded outbox and slow-client handling are the end-user face's (:mod:`jobyard.http.follow`);
only the calls differ.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import uuid

from fastapi import APIRouter, WebSocket

from jobyard.api.errors import http_status_for
from jobyard.domain.access import Identity, authorize
from jobyard.domain.errors import InvalidArgument, JobyardError
from jobyard.http.auth import identify
from jobyard.http.errors import error_body
from jobyard.http.face import HttpFace, Json
from jobyard.http.follow import LOG_MESSAGE_CHARS, ClientTooSlow, Connection, envelope, response
from jobyard.http.provider.face import ProviderFace, owner_of
from jobyard.http.provider.models import CoreJob

router = APIRouter()


@router.websocket("/ucloud/{providerId}/websocket")
async def provider_socket(websocket: WebSocket, providerId: str) -> None:
    await websocket.accept()
    provider: ProviderFace | None = websocket.app.state.provider
    if provider is None or providerId != provider.config.provider_id:
        await websocket.close(1008, "unknown provider")
        return
    await ProviderConnection(websocket, websocket.app.state.face, provider).serve()


class ProviderConnection(Connection):
    """Core's socket: follow sessions keyed by the envelope's streamId, cancelled by the
    session id they announced."""

    def __init__(self, websocket: WebSocket, face: HttpFace, provider: ProviderFace) -> None:
        super().__init__(websocket, face)
        self._provider = provider
        self._call = f"jobs.provider.{provider.config.provider_id}.follow"
        self._sessions: dict[str, str] = {}  # session id -> the envelope's streamId

    async def dispatch(self, text: str) -> None:
        try:
            call, stream_id, payload, bearer = envelope(text)
        except InvalidArgument as exc:
            await self.send(response("", 400, error_body(str(exc), "INVALID_ARGUMENT")))
            return
        if call != self._call:
            why = f"unknown call {call[:64]!r}: this socket serves {self._call}"
            await self.send(response(stream_id, 404, error_body(why, "NOT_FOUND")))
            return
        kind = payload.get("type")
        if kind == "cancel":
            session = payload.get("streamId")
            target = self._sessions.pop(session, "") if isinstance(session, str) else ""
            await self.cancel(target or stream_id)
            return
        if kind != "init":
            why = "invalid payload: type must be init or cancel"
            await self.send(response(stream_id, 400, error_body(why, "INVALID_ARGUMENT")))
            return
        await self.start_stream(stream_id, self._follow(stream_id, payload, bearer))

    async def _follow(self, stream_id: str, payload: Json, bearer: str) -> None:
        session = str(uuid.uuid4())
        self._sessions[session] = stream_id
        try:
            authorize(identify(self._face.tokens, bearer), "ucloud_provider")
            job = self._provider.job(CoreJob.model_validate(payload.get("job")))
            owner = owner_of(job)
            readers = [asyncio.create_task(self._output(stream_id, session, owner, job.id, rank))
                       for rank in range(job.spec.replicas)]  # fmt: skip
            try:
                await asyncio.gather(*readers)
            finally:
                for reader in readers:
                    reader.cancel()
        except ClientTooSlow:
            return
        except (JobyardError, ValueError) as exc:
            if not isinstance(exc, JobyardError):
                exc = InvalidArgument(f"invalid payload: job: {str(exc)[:200]}")
            status, code = http_status_for(exc)
            await self.send(response(stream_id, status, error_body(str(exc), code)))
            return
        finally:
            self._sessions.pop(session, None)
        await self.send(response(stream_id, 200, {}))

    async def _output(self, stream_id: str, session: str, owner: Identity, job_id: str,
                      rank: int) -> None:  # fmt: skip
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        chunks = self._face.engine.read_output(owner, job_id, follow=True, rank=rank)
        async with contextlib.aclosing(chunks):
            async for _, data in chunks:
                text = decoder.decode(data)
                for start in range(0, len(text), LOG_MESSAGE_CHARS):
                    piece = text[start : start + LOG_MESSAGE_CHARS]
                    body = {"streamId": session, "rank": rank, "stdout": piece, "stderr": None}
                    await self.send({"type": "message", "streamId": stream_id, "payload": body})


__all__ = ["ProviderConnection", "router"]
