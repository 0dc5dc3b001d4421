"""Turning gRPC failures into the jobyard exception hierarchy.

Two errors exist only on the client side, both under ``JobyardError``:

    JobyardError
    ├── ConnectionFailed     the server could not be reached (gRPC UNAVAILABLE)
    └── CredentialsError     the client's certificate, key or CA file is missing or unreadable
"""

from __future__ import annotations

import grpc

from jobyard.api.errors import error_class
from jobyard.domain.errors import JobyardError


class ConnectionFailed(JobyardError):
    """The server could not be reached, or the TLS handshake with it failed."""


class CredentialsError(JobyardError):
    """A certificate, key or CA file the client needs is missing or unreadable."""


def error_from_rpc(exc: grpc.RpcError, server: str = "") -> JobyardError:
    """The jobyard exception for a failed call; ``str()`` of it is the server's message."""
    # Every RpcError grpc raises is also a grpc.Call; stay duck-typed for anything else.
    code = exc.code() if callable(getattr(exc, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if callable(getattr(exc, "details", None)) else "") or ""
    if code is grpc.StatusCode.UNAVAILABLE:
        where = f" at {server}" if server else ""
        return ConnectionFailed(f"cannot reach the jobyard server{where}: {details}".rstrip(": "))
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return JobyardError(f"the server did not answer in time: {details}".rstrip(": "))
    cls = error_class(code)
    if cls is JobyardError and not details:
        details = f"request failed: {code.name}"
    return cls(details)
