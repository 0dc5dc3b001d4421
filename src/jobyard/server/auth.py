"""The gRPC face's authentication: one interceptor.

The client certificate (verified by TLS against the CA) gives the caller's identity: its CN
is the owner of the jobs it submits, its OU the role, its O the project. Whether the role
may perform the RPC's operation is decided by :mod:`jobyard.domain.access` (the one role
table, shared by every face); which jobs it reaches, by the engine. The interceptor also
turns jobyard's exceptions into gRPC status codes, so servicers only translate messages.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from jobyard.api.errors import code_for, disk_full, public_message
from jobyard.certs import identity_from_pem
from jobyard.domain.access import Identity, Role, authorize
from jobyard.domain.errors import JobyardError, Unauthenticated

log = logging.getLogger("jobyard.auth")

# RPC method -> operation; both seed services share the job operations.
METHOD_OPERATIONS: dict[str, str] = {
    f"/joblet.{service}/{rpc}": op
    for service in ("JobletService", "JobService")
    for rpc, op in {
        "RunJob": "run_job",
        "GetJobStatus": "get_job_status",
        "StopJob": "stop_job",
        "ListJobs": "list_jobs",
        "GetJobLogs": "get_job_logs",
    }.items()
}
METHOD_OPERATIONS.update(
    {
        "/joblet.JobService/RunWorkflow": "run_workflow",
        "/joblet.JobService/GetWorkflowStatus": "get_workflow_status",
        "/joblet.JobService/ListWorkflows": "list_workflows",
        "/joblet.JobService/GetWorkflowJobs": "get_workflow_jobs",
        "/jobyard.v1.JobyardService/RunJob": "run_job",
        "/jobyard.v1.JobyardService/GetJob": "get_job",
        "/jobyard.v1.JobyardService/ListJobs": "list_jobs",
        "/jobyard.v1.JobyardService/DeleteJob": "delete_job",
        "/jobyard.v1.JobyardService/SuspendJob": "suspend_job",
        "/jobyard.v1.JobyardService/ResumeJob": "resume_job",
        "/jobyard.v1.JobyardService/ExtendJob": "extend_job",
        "/jobyard.v1.JobyardService/WatchJobs": "watch_jobs",
        "/jobyard.v1.JobyardService/ReadLogs": "read_logs",
        "/jobyard.v1.JobyardService/ListFiles": "list_files",
        "/jobyard.v1.JobyardService/DownloadFile": "download_file",
        "/jobyard.v1.JobyardService/StopWorkflow": "stop_workflow",
        "/joblet.MonitoringService/GetSystemStatus": "get_system_status",
        "/joblet.MonitoringService/StreamSystemMetrics": "stream_system_metrics",
        "/joblet.VolumeService/CreateVolume": "create_volume",
        "/joblet.VolumeService/ListVolumes": "list_volumes",
        "/joblet.VolumeService/RemoveVolume": "remove_volume",
        "/joblet.NetworkService/CreateNetwork": "create_network",
        "/joblet.NetworkService/ListNetworks": "list_networks",
        "/joblet.NetworkService/RemoveNetwork": "remove_network",
        "/joblet.RuntimeService/InstallRuntime": "install_runtime",
        "/joblet.RuntimeService/ListRuntimes": "list_runtimes",
        "/joblet.RuntimeService/GetRuntimeInfo": "get_runtime_info",
        "/joblet.RuntimeService/TestRuntime": "test_runtime",
        "/joblet.RuntimeService/RemoveRuntime": "remove_runtime",
    }
)
# Served to any authenticated peer (TLS already required a CA-signed certificate).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


DEV_IDENTITY = Identity(name="dev", role=Role.ADMIN)
_current: contextvars.ContextVar[Identity] = contextvars.ContextVar("jobyard_identity")


def current_identity() -> Identity:
    """The caller of the RPC being served (set by :class:`AuthInterceptor`)."""
    return _current.get()


def identify(context: grpc.aio.ServicerContext[Any, Any], insecure: bool) -> Identity:
    if insecure:
        return DEV_IDENTITY
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        raise Unauthenticated("failed to extract client role: no TLS information found")
    try:
        return identity_from_pem(pems[0])
    except ValueError as exc:
        raise Unauthenticated(str(exc)) from exc


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, *, insecure: bool = False) -> None:
        self._insecure = insecure

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        operation = METHOD_OPERATIONS.get(method)
        if operation is None:
            return _denied_handler(handler, f"no operation is defined for {method}")
        return _wrap(handler, operation, self._insecure)


@contextlib.asynccontextmanager
async def _served(context: Any, operation: str, insecure: bool) -> AsyncIterator[None]:
    """Authorize the caller, expose it to the servicer, and map errors to status codes."""
    try:
        identity = identify(context, insecure)
        authorize(identity, operation)
        token = _current.set(identity)
        try:
            yield
        finally:
            _current.reset(token)
    except JobyardError as exc:
        await _abort(context, exc, operation)
    except grpc.aio.AbortError:
        raise
    except Exception as exc:
        if (full := disk_full(exc)) is not None:  # never a bare INTERNAL for a full disk
            await _abort(context, full, operation)
        await _internal(context, operation)


def _wrap(handler: grpc.RpcMethodHandler, operation: str, insecure: bool) -> Any:
    if handler.unary_unary is not None:
        inner = handler.unary_unary

        async def unary(request: Any, context: Any) -> Any:
            async with _served(context, operation, insecure):
                return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            async with _served(context, operation, insecure):
                async for item in inner_stream(request, context):
                    yield item

        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    return _denied_handler(handler, "streaming requests are not supported")


async def _abort(context: Any, exc: JobyardError, operation: str) -> None:
    code = code_for(exc)
    level = logging.WARNING if code in _LOUD_CODES else logging.DEBUG
    message = public_message(exc)
    log.log(level, "request refused | operation=%s code=%s error=%s", operation, code.name, message)
    await context.abort(code, message)


async def _internal(context: Any, operation: str) -> None:
    log.exception("request failed | operation=%s", operation)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error during {operation}")


_LOUD_CODES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def _denied_handler(handler: grpc.RpcMethodHandler, message: str) -> Any:
    async def deny(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    return grpc.unary_unary_rpc_method_handler(
        deny, handler.request_deserializer, handler.response_serializer
    )
