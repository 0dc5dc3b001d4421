"""The one mapping between jobyard's exceptions and gRPC status codes.

The server turns an exception into a code with :func:`code_for`; the SDK turns a code back
into the same exception class with :func:`error_class`.
"""

from __future__ import annotations

import grpc

from jobyard.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

ERROR_CODES: tuple[tuple[type[JobyardError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def code_for(exc: JobyardError) -> grpc.StatusCode:
    for kind, code in ERROR_CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def error_class(code: grpc.StatusCode) -> type[JobyardError]:
    for kind, known in ERROR_CODES:
        if known == code:
            return kind
    return JobyardError
