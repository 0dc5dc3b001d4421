"""The web dashboard of the HTTPS face: server-rendered pages (Jinja2), a small script
shipped in the package, one WebSocket for live statuses and output. See README "Dashboard".
"""

from __future__ import annotations

from fastapi import FastAPI

from jobyard.http.dashboard import actions, live, pages
from jobyard.http.dashboard.sessions import Sessions
from jobyard.http.dashboard.state import Dashboard
from jobyard.http.face import HttpFace


def install(app: FastAPI, face: HttpFace | None) -> None:
    """Serve the dashboard at ``/`` and under ``/ui/`` of ``app``."""
    if face is not None:  # None: an app built only for its OpenAPI schema (the fuzz tests)
        app.state.dashboard = Dashboard(face, Sessions(face.tokens))
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(live.router)


__all__ = ["install"]
