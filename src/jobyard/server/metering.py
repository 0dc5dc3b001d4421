"""Counts every gRPC call by method and status code, and times submissions (metrics).

The outermost interceptor: calls refused by authentication or strict parsing count too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from jobyard.metrics import Metrics

FACE = "grpc"
SUBMIT_METHODS = frozenset({
    "/joblet.JobletService/RunJob",
    "/joblet.JobService/RunJob",
    "/joblet.JobService/RunWorkflow",
    "/jobyard.v1.JobyardService/RunJob",
})  # fmt: skip


class MeteringInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        meter = _Meter(self._metrics, details.method)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                meter.unary(handler.unary_unary),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                meter.stream(handler.unary_stream),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler


class _Meter:
    def __init__(self, metrics: Metrics, method: str) -> None:
        self._metrics = metrics
        self._method = method

    def _record(self, context: Any, started: float, error: BaseException | None) -> None:
        code = context.code()
        if code is None and isinstance(error, asyncio.CancelledError):
            code = grpc.StatusCode.CANCELLED  # the client left
        elif code is None:
            code = grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        seconds = time.perf_counter() - started
        submit = self._method in SUBMIT_METHODS and code == grpc.StatusCode.OK
        self._metrics.request(FACE, self._method, name, seconds, submit)

    def unary(self, inner: Any) -> Any:
        async def unary(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                response = await inner(request, context)
            except BaseException as exc:
                self._record(context, started, exc)
                raise
            self._record(context, started, None)
            return response

        return unary

    def stream(self, inner: Any) -> Any:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for item in inner(request, context):
                    yield item
            except BaseException as exc:
                self._record(context, started, exc)
                raise
            self._record(context, started, None)

        return stream
