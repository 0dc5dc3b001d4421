"""Server-side rendering of the dashboard: the Jinja2 templates shipped in the package,
the security headers of every page, and what templates show (times, sizes, statuses).

No inline script anywhere: the Content-Security-Policy allows scripts, styles and
connections from this origin only, so an injected ``<script>`` never runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jinja2
from starlette.responses import HTMLResponse, Response

from jobyard.domain.access import Identity, authorize
from jobyard.domain.errors import PermissionDenied
from jobyard.domain.jobs import Job
from jobyard.domain.status import Status

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send Origin: null
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
ID_PREFIX_CHARS = 8

# Which statuses each control button applies to (the engine decides in the end).
ACTIONS: dict[str, tuple[str, frozenset[Status]]] = {
    "stop": ("stop_job", frozenset(Status) - frozenset(s for s in Status if s.terminal)),
    "extend": ("extend_job", frozenset({Status.RUNNING, Status.SUSPENDED})),
    "suspend": ("suspend_job", frozenset({Status.RUNNING})),
    "resume": ("resume_job", frozenset({Status.SUSPENDED})),
}


def allowed(identity: Identity, operation: str) -> bool:
    """Whether the role may perform ``operation``: :func:`authorize`'s own decision."""
    try:
        authorize(identity, operation)
    except PermissionDenied:
        return False
    return True


def when(ts: datetime | None) -> str:
    return "" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def size(count: int | None) -> str:
    if count is None:
        return ""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def job_row(job: Job) -> dict[str, Any]:
    """What the jobs table and the live updates show of a job."""
    return {
        "id": job.id,
        "short": job.id[:ID_PREFIX_CHARS],
        "name": job.name,
        "owner": job.owner,
        "project": job.project,
        "status": job.status.value,
        "terminal": job.status.terminal,
        "backend": job.backend,
        "created": when(job.created_at),
        "started": when(job.started_at),
        "ended": when(job.ended_at),
        "exit_code": job.exit_code,
        "message": job.message,
        "actions": [name for name, (_, statuses) in ACTIONS.items() if job.status in statuses],
    }


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("jobyard.http.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["size"] = size
    return env


class Pages:
    """Renders a template into a response that carries the security headers."""

    def __init__(self) -> None:
        self._env = environment()

    def render(self, template: str, context: Mapping[str, Any], status: int = 200) -> Response:
        html = self._env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
