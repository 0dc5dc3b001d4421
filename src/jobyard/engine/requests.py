"""Request ids of idempotent creates, as every face uses them (see domain/requests.py).

The engine and the workflow runner turn a face's request id into a :class:`RequestKey`
here, so a gRPC RunJob, a workflow and a future HTTP (UCloud, bulk) create share one rule:
same owner, same id, same request -> the first result; same id, another request -> refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from jobyard.domain.jobs import utcnow
from jobyard.domain.requests import REQUEST_KEY_TTL_SECONDS, RequestKey, check_key


class RequestKeys:
    """Makes the stored form of a request id: its owner, expiry and a keyed fingerprint."""

    def __init__(
        self,
        fingerprint: Callable[[bytes], str],
        ttl_seconds: float = REQUEST_KEY_TTL_SECONDS,
    ) -> None:
        self._fingerprint = fingerprint
        self._ttl = timedelta(seconds=ttl_seconds)

    def key(self, owner: str, key: str, operation: str, body: Any) -> RequestKey | None:
        """The RequestKey of ``operation`` with ``body`` (a dataclass or JSON-able value), or
        None when the client sent no id. Refuses an id of the wrong form."""
        if not key:
            return None
        check_key(key)
        data = json.dumps([operation, _plain(body)], sort_keys=True, default=_scalar).encode()
        return RequestKey(owner, key, self._fingerprint(data), utcnow() + self._ttl)


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data: dataclasses and mappings as dicts, sequences as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _scalar(value: Any) -> str:
    # Uploaded bytes count by their digest: a retry sends the same files.
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return str(value)  # datetimes, enums


__all__ = ["RequestKeys"]
