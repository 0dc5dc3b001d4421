"""Dashboard sessions: a token signed in once, then a cookie that maps to it server-side.

The cookie holds only a random session id (HttpOnly, Secure, SameSite=Strict); the token
stays in this process's memory and is authenticated again on every request, so a revoked
or expired token ends its sessions at once. Each session has its own CSRF token: every
state-changing request must carry it (header ``X-CSRF-Token`` or form field ``csrf``),
and the sign-in form, which has no session yet, must come from this origin.

TODO: sessions live in memory and end with the server; keep them in the database
(hashed ids) if sign-ins should survive a restart.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import secrets
import time
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from jobyard.domain.access import Identity
from jobyard.domain.errors import PermissionDenied, Unauthenticated
from jobyard.store.tokens import SQLiteTokens

COOKIE = "jobyard_session"
CSRF_HEADER = "x-csrf-token"
SESSION_IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000
MAX_SESSION_ID_CHARS = 64


@dataclasses.dataclass
class Session:
    """One signed-in browser; ``secret`` (the token) is never shown or logged."""

    secret: str = dataclasses.field(repr=False)
    csrf: str = dataclasses.field(repr=False)
    last_used: float


class Sessions:
    """Signed-in browsers, at most ``MAX_SESSIONS`` (the least recently used go first)."""

    def __init__(self, tokens: SQLiteTokens, idle_seconds: float = SESSION_IDLE_SECONDS) -> None:
        self._tokens = tokens
        self._idle = idle_seconds
        self._sessions: collections.OrderedDict[str, Session] = collections.OrderedDict()

    def sign_in(self, secret: str) -> tuple[str, Identity]:
        """A new session for the token ``secret`` (Unauthenticated saying why if it is not
        one): its id, for the cookie, and who it is."""
        identity = self._tokens.authenticate(secret.strip()).identity
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(secret.strip(), secrets.token_urlsafe(32),
                                             time.monotonic())  # fmt: skip
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session_id, identity

    def sign_out(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def find(self, session_id: str) -> tuple[Session, Identity] | None:
        """The live session and its identity; None (and the session gone) when it expired
        or its token no longer authenticates."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_used > self._idle:
            self.sign_out(session_id)
            return None
        try:
            identity = self._tokens.authenticate(session.secret).identity
        except Unauthenticated:
            self.sign_out(session_id)
            return None
        session.last_used = now
        self._sessions.move_to_end(session_id)
        return session, identity

    def of(self, connection: HTTPConnection) -> tuple[Session, Identity] | None:
        """The session of a request's or WebSocket's cookie, if any."""
        session_id = connection.cookies.get(COOKIE, "")
        if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
            return None
        return self.find(session_id)


def check_csrf(session: Session, presented: str | None) -> None:
    """PermissionDenied unless ``presented`` is the session's CSRF token."""
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise PermissionDenied("missing or wrong CSRF token: reload the page and try again")


def check_same_origin(connection: HTTPConnection) -> None:
    """PermissionDenied for a request another site's page made (by Origin, else by
    Sec-Fetch-Site): the sign-in form and WebSockets, which carry no CSRF token."""
    origin = connection.headers.get("origin")
    host = connection.headers.get("host", "")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc != host:
            raise PermissionDenied("cross-origin request refused")
        return
    fetch_site = connection.headers.get("sec-fetch-site")
    if fetch_site not in (None, "same-origin", "none"):
        raise PermissionDenied("cross-site request refused")


def cookie_header(session_id: str, max_age: int = SESSION_IDLE_SECONDS) -> str:
    """The Set-Cookie value of a session (an empty one with ``max_age`` 0 ends it)."""
    return (f"{COOKIE}={session_id}; Path=/; Max-Age={max_age}; HttpOnly; Secure; "
            "SameSite=Strict")  # fmt: skip
