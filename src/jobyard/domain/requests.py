"""Idempotent creates: a client's request id, scoped to its owner.

A client that does not know whether its create arrived (a deadline passed, the connection
dropped) sends it again with the same request id (gRPC metadata ``idempotency-key``). The
first create records the id with the id of what it created, in the same transaction; a
retry finds it and is answered with that job or workflow, never a second one. The same id
with a different request is refused (ALREADY_EXISTS), as is an id of the wrong form. Ids
expire after :data:`REQUEST_KEY_TTL_SECONDS`.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from jobyard.domain.errors import AlreadyExists, InvalidArgument, JobyardError

REQUEST_KEY_TTL_SECONDS = 24 * 3600
MAX_REQUEST_KEY_CHARS = 128
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


@dataclasses.dataclass(frozen=True, slots=True)
class RequestKey:
    """A create's request id: who sent it, and a fingerprint of what it asked for."""

    owner: str
    key: str
    fingerprint: str  # keyed hash of the operation and its request
    expires_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """What a stored request id answers: the fingerprint it was first used with and the id
    of what that request created."""

    fingerprint: str
    result_id: str


class DuplicateRequest(JobyardError):
    """A store found the request id taken when it tried to record it (a concurrent retry)."""

    def __init__(self, claimed: Claimed) -> None:
        super().__init__(f"request id already used (for {claimed.result_id})")
        self.claimed = claimed


def check_key(key: str) -> None:
    if len(key) > MAX_REQUEST_KEY_CHARS or not _KEY.fullmatch(key):
        raise InvalidArgument(
            f"invalid idempotency-key {key!r}: use letters, digits and . _ : - "
            f"(at most {MAX_REQUEST_KEY_CHARS} characters)"
        )


def replayed(request: RequestKey, claimed: Claimed, what: str) -> str:
    """The id a retry is answered with; refuses a different request under the same id."""
    if claimed.fingerprint != request.fingerprint:
        raise AlreadyExists(
            f"idempotency-key {request.key!r} was already used for a different request "
            f"({what} {claimed.result_id}): send a new key for a new request"
        )
    return claimed.result_id


__all__ = ["Claimed", "DuplicateRequest", "RequestKey", "check_key", "replayed"]
