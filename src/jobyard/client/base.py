"""What every part of the SDK shares: the channel, the settings and one way to call."""

from __future__ import annotations

from typing import Any

import grpc

from jobyard.client.errors import error_from_rpc
from jobyard.client.settings import ClientSettings


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
