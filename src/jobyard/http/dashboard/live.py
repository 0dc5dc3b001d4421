"""``/ui/live``: the dashboard's WebSocket, signed in by the session cookie.

The page sends one subscription, then only listens:

- ``{"watch": "jobs", "ids": [...], "new": true|false}``: the table's jobs, a ``job`` message
  on each change; with ``new`` (the first, unfiltered page) also a ``new`` message the first
  time another job the caller may see changes (submitted since the page was drawn);
- ``{"watch": "job", "id": ID}``: the job's changes and usage, and every rank's output
  (``output`` messages: the last ``HISTORY_BYTES`` first, then live) until it ends;
- ``{"watch": "workflow", "id": ID}``: the workflow's jobs as they start and change.

Messages: ``{"type": "job", "job": ROW, "usage": {...}|null}``, ``{"type": "output",
"rank": R, "text": T}``, ``{"type": "skipped", "rank": R, "bytes": N}`` (older output left
out: download it), ``{"type": "new", "job": ROW}``, ``{"type": "error", "why": W}``,
``{"type": "end"}``.

Handshakes from other origins and without a live session are refused (403) before any
job is looked at. Each connection has one bounded outbox; a browser that reads nothing for
the follower stall timeout is disconnected (1008), and the engine never waits for it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from jobyard.api.errors import http_status_for, public_message
from jobyard.domain.access import Identity, authorize, visible
from jobyard.domain.errors import InvalidArgument, JobyardError, PermissionDenied
from jobyard.domain.jobs import Job
from jobyard.engine.events import WatcherTooSlow
from jobyard.http.dashboard.rendering import job_row
from jobyard.http.dashboard.sessions import check_same_origin
from jobyard.http.dashboard.state import dashboard_of
from jobyard.http.face import HttpFace

log = logging.getLogger("jobyard.http")
router = APIRouter()

OUTBOX_MESSAGES = 64
TEXT_MESSAGE_CHARS = 64 * 1024
HISTORY_BYTES = 1024 * 1024  # output shown on opening a job page; the rest is a download
MAX_WATCHED_IDS = 100
MAX_NEW_JOBS = 1000  # new jobs announced to one jobs table; past that it says "many"
MAX_SUBSCRIPTION_CHARS = 8 * 1024
USAGE_INTERVAL_SECONDS = 5.0
CLOSE_POLICY = 1008
CLOSE_GRACE_SECONDS = 1.0


class _TooSlow(Exception):
    pass


@router.websocket("/ui/live")
async def live(websocket: WebSocket) -> None:
    dashboard = dashboard_of(websocket)
    try:
        check_same_origin(websocket)
    except PermissionDenied:
        await websocket.close(CLOSE_POLICY)
        return
    who = dashboard.sessions.of(websocket)
    if who is None:
        await websocket.close(CLOSE_POLICY)
        return
    await websocket.accept()
    gauge = dashboard.face.metrics.connections.labels("dashboard")
    gauge.inc()
    try:
        await Live(websocket, dashboard.face, who[1]).serve()
    finally:
        gauge.dec()


class Live:
    """One browser's subscription: a producer task, and a writer draining the outbox."""

    def __init__(self, websocket: WebSocket, face: HttpFace, identity: Identity) -> None:
        self._ws = websocket
        self._face = face
        self._who = identity
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX_MESSAGES)
        self._stall = face.engine.logs.config.follower_stall_timeout_seconds or None

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write())
        producer = asyncio.create_task(self._produce())
        listener = asyncio.create_task(self._until_closed())
        tasks = {writer, producer, listener}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if done == {producer} and producer.exception() is None:  # "end" is on its way
                await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if producer.done() and isinstance(producer.exception(), _TooSlow):
            log.warning("dashboard client too slow: disconnected | stall=%ss", self._stall)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                    await self._ws.close(CLOSE_POLICY, "client too slow: messages not read")

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            await self._ws.send_text(json.dumps(message))
            if message["type"] == "end":
                return

    async def send(self, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(self._stall):
                await self._outbox.put(message)
        except TimeoutError:
            raise _TooSlow from None

    async def _until_closed(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await self._ws.receive_text()  # nothing more is expected; drained

    async def _produce(self) -> None:
        try:
            text = await self._ws.receive_text()
            wanted = _subscription(text)
            if wanted.kind == "jobs":
                await self._jobs(list(wanted.ids), wanted.new)
            elif wanted.kind == "job":
                await self._job(wanted.ref)
            else:
                await self._workflow(wanted.ref)
        except (JobyardError, WatcherTooSlow) as exc:
            status, _ = http_status_for(exc) if isinstance(exc, JobyardError) else (503, "")
            why = "internal error" if status >= 500 else public_message(exc)
            if isinstance(exc, WatcherTooSlow):
                why = "too many changes at once: reload the page"
            await self.send({"type": "error", "why": why})
        await self.send({"type": "end"})

    async def _changed(self, job: Job, usage: bool = False) -> None:
        message: dict[str, Any] = {"type": "job", "job": job_row(job), "usage": None}
        if usage:
            details = await self._face.engine.details_of(job)
            used = details.usage
            if used is not None:
                message["usage"] = {"cpu_seconds": round(used.cpu_seconds, 2),
                                    "memory_peak_bytes": used.memory_peak_bytes,
                                    "output_bytes": details.output_bytes}  # fmt: skip
        await self.send(message)

    async def _jobs(self, ids: list[str], new: bool) -> None:
        authorize(self._who, "watch_jobs")
        work = [self._table(ids)] if ids else []  # no ids would mean every job: none
        if new:
            work.append(self._new_jobs(set(ids)))
        tasks = [asyncio.create_task(w) for w in work]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _table(self, ids: list[str]) -> None:
        changes = self._face.engine.watch_jobs(self._who, ids)
        async with contextlib.aclosing(changes):
            async for change in changes:
                await self._changed(change.job)

    async def _new_jobs(self, shown: set[str]) -> None:
        """One ``new`` message per job the table does not show, as it first changes (at
        most ``MAX_NEW_JOBS``: the page then only says there are more)."""
        who = self._who

        def accept(job: Job) -> bool:
            return job.id not in shown and visible(who, job)

        async with self._face.engine.events.subscribe((), accept) as changes:
            async for job in changes:
                if job.id in shown or len(shown) >= MAX_WATCHED_IDS + MAX_NEW_JOBS:
                    continue
                shown.add(job.id)
                await self.send({"type": "new", "job": job_row(job)})

    async def _job(self, ref: str) -> None:
        job = self._face.job(self._who, ref, "read_logs")
        authorize(self._who, "watch_jobs")
        readers = [asyncio.create_task(self._output(job, rank))
                   for rank in range(job.spec.replicas)]  # fmt: skip
        usage = asyncio.create_task(self._usage(job.id))
        try:
            changes = self._face.engine.watch_jobs(self._who, [job.id])
            async with contextlib.aclosing(changes):
                async for change in changes:
                    await self._changed(change.job, usage=True)
            await asyncio.gather(*readers)  # the job ended: its output is all there
        finally:
            for task in (*readers, usage):
                task.cancel()
            await asyncio.gather(*readers, usage, return_exceptions=True)

    async def _usage(self, job_id: str) -> None:
        """Usage so far, now and then while the job runs (the page's usage figures)."""
        while True:
            await asyncio.sleep(USAGE_INTERVAL_SECONDS)
            job = self._face.engine.job(self._who, job_id)
            if job.status.terminal:
                return
            await self._changed(job, usage=True)

    async def _output(self, job: Job, rank: int) -> None:
        engine = self._face.engine
        start = max(0, engine.logs.size(job.id, rank) - HISTORY_BYTES)
        if start:
            await self.send({"type": "skipped", "rank": rank, "bytes": start})
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        chunks = engine.read_output(self._who, job.id, offset=start, follow=True, rank=rank)
        async with contextlib.aclosing(chunks):
            async for _, data in chunks:
                text = decoder.decode(data)
                for at in range(0, len(text), TEXT_MESSAGE_CHARS):
                    piece = text[at : at + TEXT_MESSAGE_CHARS]
                    await self.send({"type": "output", "rank": rank, "text": piece})

    async def _workflow(self, ref: str) -> None:
        runner = self._face.workflows
        if runner is None:
            raise InvalidArgument("workflows are not served here")
        authorize(self._who, "get_workflow_jobs")
        record = runner.workflow(self._who, ref)
        who = self._who

        def accept(job: Job) -> bool:
            return job.workflow_id == record.id and visible(who, job)

        async with self._face.engine.events.subscribe((), accept) as changes:
            for view in runner.jobs_of(record):  # subscribed first: nothing falls between
                if view.job is not None:
                    await self._changed(view.job)
            async for job in changes:
                await self._changed(job)


@dataclasses.dataclass(frozen=True, slots=True)
class Subscription:
    """The page's one message: what it watches."""

    kind: str  # jobs, job, workflow
    ref: str = ""  # the job's or workflow's id
    ids: tuple[str, ...] = ()  # the table's jobs
    new: bool = False  # announce other jobs as they appear (the jobs table)


def _subscription(text: str) -> Subscription:
    """The page's one message, checked; InvalidArgument when malformed."""
    if len(text) > MAX_SUBSCRIPTION_CHARS:
        raise InvalidArgument("subscription too large")
    try:
        message = json.loads(text)
    except ValueError:
        raise InvalidArgument("invalid subscription: malformed JSON") from None
    if not isinstance(message, dict) or message.get("watch") not in ("jobs", "job", "workflow"):
        raise InvalidArgument('invalid subscription: {"watch": "jobs"|"job"|"workflow"}')
    kind = message["watch"]
    ids = message.get("ids", [])
    ref = message.get("id", "")
    if kind == "jobs":
        if not isinstance(ids, list) or len(ids) > MAX_WATCHED_IDS:
            raise InvalidArgument(f"invalid ids: a list of at most {MAX_WATCHED_IDS}")
        if not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
            raise InvalidArgument("invalid ids: job ids are required")
        return Subscription(kind, ids=tuple(ids), new=message.get("new") is True)
    if not isinstance(ref, str) or not 0 < len(ref) <= 64:
        raise InvalidArgument("invalid id: the job's or workflow's id is required")
    return Subscription(kind, ref=ref)
