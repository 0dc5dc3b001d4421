"""joblet.MonitoringService: host metrics, once or as a stream; translation only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.domain.errors import InvalidArgument
from jobyard.monitoring import METRIC_TYPES, HostSampler

DEFAULT_INTERVAL_SECONDS = 5
MAX_INTERVAL_SECONDS = 3600
# GetSystemStatus measures rates and CPU shares over this much time.
STATUS_WINDOW_SECONDS = 0.25


class MonitoringServicer(pb_grpc.MonitoringServiceServicer):
    async def GetSystemStatus(self, request: pb.EmptyRequest, context: Any) -> pb.SystemStatusRes:
        # psutil reads /proc synchronously: off the event loop, so that no RPC waits on it.
        sampler = await asyncio.to_thread(HostSampler)
        await asyncio.sleep(STATUS_WINDOW_SECONDS)
        sample = await asyncio.to_thread(sampler.sample)
        return pb.SystemStatusRes(available=True, **sample)

    async def StreamSystemMetrics(
        self, request: pb.StreamMetricsReq, context: Any
    ) -> AsyncIterator[pb.SystemMetricsRes]:
        interval = request.intervalSeconds or DEFAULT_INTERVAL_SECONDS
        if not 1 <= interval <= MAX_INTERVAL_SECONDS:
            raise InvalidArgument(
                f"invalid intervalSeconds {interval}: must be between 1 and {MAX_INTERVAL_SECONDS}"
            )
        types = frozenset(t.lower() for t in request.metricTypes) or METRIC_TYPES
        unknown = types - METRIC_TYPES
        if unknown:
            raise InvalidArgument(
                f"invalid metricTypes {', '.join(sorted(unknown))}: "
                f"use {', '.join(sorted(METRIC_TYPES))}"
            )
        sampler = await asyncio.to_thread(HostSampler)
        await asyncio.sleep(STATUS_WINDOW_SECONDS)  # the first sample has rates too
        while True:
            yield pb.SystemMetricsRes(**await asyncio.to_thread(sampler.sample, types))
            await asyncio.sleep(interval)
