"""What every part of the SDK shares: the channel, the settings and one way to call."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc

from jobyard.client.errors import error_from_rpc
from jobyard.client.settings import ClientSettings

IDEMPOTENCY_KEY = "idempotency-key"  # the metadata the server reads a create's request id from
# A create whose answer was lost (no connection, deadline passed) is sent again, with the
# same request id, after each of these pauses: the server answers a retry with what the
# first attempt created, so retrying never creates a second job or workflow.
CREATE_RETRY_PAUSES_SECONDS = (0.5, 2.0)
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Connected:
    """Base of :class:`jobyard.client.Client` and of each of its per-area mixins."""

    _channel: grpc.Channel
    settings: ClientSettings
    timeout: float | None

    def _unary(self, method: Any, request: Any) -> Any:
        """Call a unary RPC; failures become jobyard exceptions carrying the server's message."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.settings.server) from exc

    def _create(self, method: Any, request: Any, request_id: str | None = None) -> Any:
        """Call a create RPC idempotently: one request id (``request_id``, or a new UUID) for
        every attempt; failures that leave the outcome unknown are retried."""
        metadata = ((IDEMPOTENCY_KEY, request_id or str(uuid.uuid4())),)
        for pause in (*CREATE_RETRY_PAUSES_SECONDS, None):
            try:
                return method(request, timeout=self.timeout, metadata=metadata)
            except grpc.RpcError as exc:
                if pause is None or exc.code() not in _RETRIED:
                    raise error_from_rpc(exc, self.settings.server) from exc
            time.sleep(pause)
        raise AssertionError("unreachable")  # the last attempt returns or raises
