"""The dashboard's buttons (stop, extend, suspend, resume), downloads and static files.

Buttons post JSON from the page's script with the session's CSRF token in a header;
the engine decides, with the caller's identity, exactly as for the API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from jobyard.api.errors import http_status_for, public_message
from jobyard.domain.access import Identity
from jobyard.domain.errors import InvalidArgument, JobyardError, Unauthenticated
from jobyard.domain.jobs import Job
from jobyard.http.dashboard.rendering import ACTIONS, SECURITY_HEADERS, job_row, secured
from jobyard.http.dashboard.sessions import CSRF_HEADER, check_csrf
from jobyard.http.dashboard.state import dashboard_of, signed_in, to_sign_in
from jobyard.http.face import HttpFace

router = APIRouter(include_in_schema=False)

MAX_EXTEND_SECONDS = 7 * 24 * 3600
MAX_ACTION_BODY_BYTES = 1024
STATIC_TYPES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@router.post("/ui/jobs/{job_id}/{action}")
async def act(request: Request, job_id: str, action: str) -> Response:
    who = signed_in(request)
    try:
        if who is None:
            raise Unauthenticated("signed out: sign in again")
        check_csrf(who[0], request.headers.get(CSRF_HEADER))
        if action not in ACTIONS:
            raise InvalidArgument(f"unknown action {action[:32]!r}")
        seconds = _seconds(await request.body()) if action == "extend" else 0.0
        job = await _perform(dashboard_of(request).face, who[1], job_id[:64], action, seconds)
    except JobyardError as exc:
        status, code = http_status_for(exc)
        why = "internal error" if status >= 500 else public_message(exc)
        return _json({"ok": False, "why": why, "code": code}, status)
    return _json({"ok": True, "job": job_row(job)})


async def _perform(face: HttpFace, who: Identity, ref: str, action: str, seconds: float) -> Job:
    operation = ACTIONS[action][0]
    job = face.job(who, ref, operation)
    engine = face.engine
    if action == "stop":
        return await engine.stop(who, job.id)
    if action == "extend":
        return await engine.extend(who, job.id, seconds)
    if action == "suspend":
        return await engine.suspend(who, job.id)
    return await engine.resume(who, job.id)


def _seconds(body: bytes) -> float:
    """``{"minutes": N}`` of an extend, as seconds (1 minute to a week)."""
    if len(body) > MAX_ACTION_BODY_BYTES:
        raise InvalidArgument("request too large")
    try:
        minutes = json.loads(body or b"{}").get("minutes")
    except (ValueError, AttributeError):
        raise InvalidArgument('invalid request: expected {"minutes": N}') from None
    if not isinstance(minutes, int | float) or isinstance(minutes, bool):
        raise InvalidArgument("invalid minutes: a number is required")
    if not 0 < minutes * 60 <= MAX_EXTEND_SECONDS:
        raise InvalidArgument(f"invalid minutes {minutes}: 1 to {MAX_EXTEND_SECONDS // 60}")
    return float(minutes) * 60


def _json(body: object, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=SECURITY_HEADERS)


@router.get("/ui/jobs/{job_id}/output")
async def download_output(
    request: Request, job_id: str, rank: Annotated[int, Query(ge=0, le=4096)] = 0
) -> Response:
    """A rank's whole output so far, as a text file."""
    who = signed_in(request)
    if who is None:
        return to_sign_in()
    dashboard = dashboard_of(request)
    try:
        job = dashboard.face.job(who[1], job_id[:64], "read_logs")
        chunks = dashboard.face.engine.read_output(who[1], job.id, rank=rank)
    except JobyardError as exc:
        return dashboard.error(who, exc)
    name = f"{job.id[:8]}-output{'' if rank == 0 else f'-rank{rank}'}.log"
    return _download(_bytes(chunks), name, "text/plain; charset=utf-8")


@router.get("/ui/jobs/{job_id}/files")
async def download_file(
    request: Request, job_id: str, path: Annotated[str, Query(min_length=1, max_length=4096)]
) -> Response:
    """One file of the job's work directory."""
    who = signed_in(request)
    if who is None:
        return to_sign_in()
    dashboard = dashboard_of(request)
    try:
        job = dashboard.face.job(who[1], job_id[:64], "download_file")
        chunks = dashboard.face.engine.download(who[1], job.id, path)
        first = await anext(aiter(chunks), None)  # a missing file is refused before headers
    except JobyardError as exc:
        return dashboard.error(who, exc)
    name = path.rsplit("/", 1)[-1]
    return _download(_prefixed(first, chunks), name, "application/octet-stream")


async def _bytes(chunks: AsyncIterator[tuple[int, bytes]]) -> AsyncIterator[bytes]:
    async for _, data in chunks:
        yield data


async def _prefixed(
    first: tuple[int, bytes] | None, chunks: AsyncIterator[tuple[int, bytes]]
) -> AsyncIterator[bytes]:
    if first is not None:
        yield first[1]
        async for _, data in chunks:
            yield data


def _download(body: AsyncIterator[bytes], name: str, media_type: str) -> Response:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:128] or "download"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{safe}"'}
    return StreamingResponse(body, media_type=media_type, headers=headers)


@router.get("/ui/static/{name}")
async def static(name: str) -> Response:
    """The script, style and icon shipped in the package (no CDN, nothing built)."""
    media_type = STATIC_TYPES.get(name)
    if media_type is None:
        return secured(Response("not found", status_code=404, media_type="text/plain"))
    data = resources.files("jobyard.http.dashboard").joinpath("static", name).read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(data, media_type=media_type, headers=headers)
