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

    def unary(self, inner: Any) -> Any:
        async def unary(request: Any, context: Any) -> Any:
            call = _Call(self._metrics, self._method, context)
            try:
                response = await inner(request, call)
            except BaseException as exc:
                call.record(exc)
                raise
            call.record(None)
            return response

        return unary

    def stream(self, inner: Any) -> Any:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            call = _Call(self._metrics, self._method, context)
            try:
                async for item in inner(request, call):
                    yield item
            except BaseException as exc:
                call.record(exc)
                raise
            call.record(None)

        return stream


class _Call:
    """One call's servicer context, as the handlers inside see it: everything is the real
    context's, except that ``abort`` counts the call first. grpc.aio sends the status from
    within ``abort``, so counting after it would let a client see its refusal before the
    metrics do."""

    def __init__(self, metrics: Metrics, method: str, context: Any) -> None:
        self._metrics = metrics
        self._method = method
        self._context = context
        self._started = time.perf_counter()
        self._recorded = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, code: grpc.StatusCode, details: str = "", *args: Any) -> None:
        self._count(code)
        await self._context.abort(code, details, *args)

    def record(self, error: BaseException | None) -> None:
        code = self._context.code()
        if code is None and isinstance(error, asyncio.CancelledError):
            code = grpc.StatusCode.CANCELLED  # the client left
        elif code is None:
            code = grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN
        self._count(code)

    def _count(self, code: Any) -> None:
        if self._recorded:
            return
        self._recorded = True
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        seconds = time.perf_counter() - self._started
        submit = self._method in SUBMIT_METHODS and code == grpc.StatusCode.OK
        self._metrics.request(FACE, self._method, name, seconds, submit)
