"""The ASGI application of the HTTPS face (FastAPI), and the limits every request meets.

FastAPI (Starlette + pydantic v2) was chosen for typed request models that validate and
document themselves (``/openapi.json``), first-class WebSockets, and because it runs on
uvicorn inside the server's own asyncio loop, beside grpc.aio.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import jobyard
from jobyard.http import accounting, dashboard, errors, follow, jobs, metering
from jobyard.http.errors import error_response
from jobyard.http.face import HttpFace
from jobyard.http.provider import follow as provider_follow
from jobyard.http.provider import routes as provider_routes
from jobyard.http.provider.face import ProviderFace

MAX_BODY_BYTES = 1024 * 1024


def create_app(face: HttpFace, provider: ProviderFace | None = None) -> FastAPI:
    """The end-user face, and with ``provider`` the UCloud provider face (``/ucloud/...``)."""
    app = FastAPI(
        title="jobyard",
        version=jobyard.__version__,
        summary="UCloud's end-user Jobs API on jobyard (Authorization: Bearer TOKEN)",
        description=(
            "Errors are UCloud's {why, errorCode}. jobs.follow is a WebSocket at /api/jobs "
            '(send {"call": "jobs.follow", "streamId", "payload": {"id"}, "bearer"}; '
            "messages initialJob, updates/newStatus, log, then a response)."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.face = face
    errors.install(app)
    app.include_router(jobs.router)
    app.include_router(accounting.router)
    app.include_router(follow.router)
    app.state.provider = provider
    if provider is not None:
        app.include_router(provider_routes.router)
        app.include_router(provider_follow.router)
    app.include_router(metering.router)
    dashboard.install(app, face)
    app.add_middleware(metering.RouteProbe)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(metering.Metering, face=face)  # outermost: refusals count too
    return app


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413, before it is parsed or kept:
    by its Content-Length when it has one, else as it streams in.

    Every body this API takes is JSON: it is parsed as JSON whatever Content-Type says
    (the seed's own curl examples send ``content-type: application/json`` twice over, and
    plain ``curl -d`` sends a form type); what is not JSON is a 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        length = dict(headers).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self._max:
            await self._refuse(scope, receive, send)
            return
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        received = 0
        too_large = False

        async def bounded() -> Message:
            nonlocal received, too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max:
                too_large = True
                raise _TooLarge
            return message

        async def unless_too_large(message: Message) -> None:
            # FastAPI turns any error while reading the body into its own 400: once the
            # limit is passed, that answer is dropped for the 413 below.
            if not too_large:
                await send(message)

        with contextlib.suppress(_TooLarge):
            await self._app(scope, bounded, unless_too_large)
        if too_large:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        why = f"request body too large: at most {self._max} bytes"
        await error_response(413, why, "PAYLOAD_TOO_LARGE")(scope, receive, send)


class _TooLarge(Exception):
    pass


__all__: list[Any] = ["MAX_BODY_BYTES", "create_app"]
