"""Metrics of the HTTPS face: every request counted by route and status (an ASGI
middleware), and ``GET /metrics`` in Prometheus' text format for admin and viewer tokens."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobyard.domain.access import authorize
from jobyard.http.auth import identify
from jobyard.http.face import HttpFace
from jobyard.metrics import CONTENT_TYPE

FACE = "http"
SUBMIT_ROUTES = frozenset({"POST /api/jobs"})
router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The server's metrics; a bearer token of an admin or a viewer is required."""
    face: HttpFace = request.app.state.face
    identity = identify(face.tokens, request.headers.get("authorization"))
    authorize(identity, "read_metrics")
    return Response(face.metrics.exposition(), media_type=CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})  # fmt: skip


ROUTE_KEY = "jobyard.route"


class Metering:
    """Counts each answered HTTP request as ``METHOD /route/template`` and its status (a
    path no route matches counts as ``unmatched``: ids never become labels).

    The outermost middleware, so that refusals of the others count too; the route the
    router matched comes back from :class:`RouteProbe`, the innermost one, through a
    holder in the scope (middlewares in between may copy the scope, never the holder).
    """

    def __init__(self, app: ASGIApp, face: HttpFace) -> None:
        self._app = app
        self._face = face

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        holder: list[str] = []
        scope = {**scope, ROUTE_KEY: holder}
        counted = False

        def count(status: int) -> None:
            nonlocal counted
            counted = True
            route = f"{scope['method']} {holder[0] if holder else 'unmatched'}"
            seconds = time.perf_counter() - started  # to the response's start
            submit = route in SUBMIT_ROUTES and status < 400
            self._face.metrics.request(FACE, route, str(status), seconds, submit)

        async def sending(message: Message) -> None:
            # Counted before the answer leaves: a client that saw it finds it in /metrics.
            if message["type"] == "http.response.start" and not counted:
                count(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            if not counted:
                count(500)  # the app failed before answering: the server's 500 follows

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake counts once, as ``WS /route`` with 101 (accepted) or 403."""
        holder: list[str] = []
        scope = {**scope, ROUTE_KEY: holder}
        counted = False

        async def sending(message: Message) -> None:
            nonlocal counted
            kind = message["type"]
            if not counted and kind in ("websocket.accept", "websocket.close"):
                counted = True
                code = "101" if kind == "websocket.accept" else "403"
                route = f"WS {holder[0] if holder else 'unmatched'}"
                self._face.metrics.request(FACE, route, code, 0.0, submit=False)
            await send(message)

        await self._app(scope, receive, sending)


class RouteProbe:
    """Hands the matched route's template (``/ui/jobs/{job_id}``) to :class:`Metering`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        holder = scope.get(ROUTE_KEY)

        async def sending(message: Message) -> None:
            self._probe(scope, holder)  # a WebSocket's route is known before it answers
            await send(message)

        try:
            await self._app(scope, receive, sending if holder is not None else send)
        finally:
            self._probe(scope, holder)

    @staticmethod
    def _probe(scope: Scope, holder: list[str] | None) -> None:
        route = scope.get("route")
        if holder is not None and not holder and route is not None:
            holder.append(str(getattr(route, "path", "unmatched")))
