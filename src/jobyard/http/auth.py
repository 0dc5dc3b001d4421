"""Bearer tokens -> :class:`Identity`; roles are then checked by :mod:`jobyard.domain.access`,
the same role table as the gRPC face."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobyard.domain.access import Identity
from jobyard.domain.errors import Unauthenticated
from jobyard.store.tokens import SQLiteTokens

# auto_error=False: a missing header is our 401 with UCloud's body, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="A token from `jobyard tokens create`.")


def identify(tokens: SQLiteTokens, header: str | None) -> Identity:
    """The identity of an ``Authorization`` header's token (or of a bare token)."""
    if not header:
        raise Unauthenticated("missing bearer token: send Authorization: Bearer TOKEN")
    scheme, _, secret = header.strip().partition(" ")
    if not secret:
        scheme, secret = "bearer", scheme
    if scheme.lower() != "bearer":
        raise Unauthenticated(f"unsupported authorization scheme {scheme[:20]!r}: use Bearer")
    return tokens.authenticate(secret.strip()).identity


def caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
) -> Identity:
    """FastAPI dependency: the authenticated caller of this request."""
    tokens: SQLiteTokens = request.app.state.face.tokens
    return identify(tokens, request.headers.get("authorization"))
