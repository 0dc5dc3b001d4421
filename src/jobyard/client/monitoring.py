"""The SDK's host monitoring methods (joblet.MonitoringService), mixed into Client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import grpc
from google.protobuf.message import Message

from jobyard.api.gen import joblet_pb2, joblet_pb2_grpc
from jobyard.client.base import Connected
from jobyard.client.errors import error_from_rpc

SystemSample = dict[str, Any]  # keyed by the wire's field names (cpu.usagePercent, ...)


def _as_dict(msg: Message) -> SystemSample:
    """Every field by its wire name, numbers as numbers (JSON mapping would quote int64)."""
    out: SystemSample = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            out[field.name] = dict(value)
        elif field.message_type is not None:
            out[field.name] = [_as_dict(v) for v in value] if field.is_repeated else _as_dict(value)
        else:
            out[field.name] = list(value) if field.is_repeated else value
    return out


class MonitoringMethods(Connected):
    def system_status(self) -> SystemSample:
        """One snapshot of the server's host: CPU, memory, disks, networks, IO, processes."""
        stub = joblet_pb2_grpc.MonitoringServiceStub(self._channel)
        return _as_dict(self._unary(stub.GetSystemStatus, joblet_pb2.EmptyRequest()))

    def system_metrics(
        self, interval: int = 5, types: Iterable[str] = ()
    ) -> Iterator[SystemSample]:
        """A snapshot every ``interval`` seconds until the caller stops iterating."""
        stub = joblet_pb2_grpc.MonitoringServiceStub(self._channel)
        request = joblet_pb2.StreamMetricsReq(intervalSeconds=interval, metricTypes=list(types))
        call = stub.StreamSystemMetrics(request)
        try:
            for msg in call:
                yield _as_dict(msg)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.settings.server) from exc
        finally:
            call.cancel()
