"""What every dashboard route works with: the face, the sessions and the templates."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse, Response

from jobyard.api.errors import http_status_for, public_message
from jobyard.domain.access import Identity
from jobyard.domain.errors import JobyardError
from jobyard.http.dashboard.rendering import Pages, allowed, secured
from jobyard.http.dashboard.sessions import Session, Sessions
from jobyard.http.face import HttpFace


@dataclasses.dataclass
class Dashboard:
    face: HttpFace
    sessions: Sessions
    pages: Pages = dataclasses.field(default_factory=Pages)

    def page(
        self,
        template: str,
        who: tuple[Session, Identity],
        context: Mapping[str, Any],
        status: int = 200,
    ) -> Response:
        """A signed-in page: the template gets who is signed in and the CSRF token."""
        session, identity = who
        base = {
            "identity": identity,
            "csrf": session.csrf,
            "can_see_wallets": self.face.ledger is not None and allowed(identity, "list_wallets"),
            "can_see_workflows": self.face.workflows is not None
            and allowed(identity, "list_workflows"),
        }
        return self.pages.render(template, {**base, **context}, status)

    def error(self, who: tuple[Session, Identity], exc: JobyardError) -> Response:
        """A refusal as a page of its own, with the status the API would answer."""
        status, code = http_status_for(exc)
        why = "internal error" if status >= 500 else public_message(exc)
        return self.page("error.html", who, {"status": status, "code": code, "why": why}, status)


def dashboard_of(connection: HTTPConnection) -> Dashboard:
    dashboard: Dashboard = connection.app.state.dashboard
    return dashboard


def signed_in(connection: HTTPConnection) -> tuple[Session, Identity] | None:
    return dashboard_of(connection).sessions.of(connection)


def to_sign_in() -> Response:
    return secured(RedirectResponse("/", status_code=303))
