"""The one mapping between jobyard's exceptions and gRPC status codes, and their messages.

The server turns an exception into a code with :func:`code_for` and into the message it
sends (and logs) with :func:`public_message`; the SDK turns a code back into the same
exception class with :func:`error_class`. The HTTPS face answers
:func:`http_status_for` with the gRPC code's name as UCloud's ``errorCode``.
"""

from __future__ import annotations

import errno
import sqlite3

import grpc

from jobyard.domain.errors import (
    AlreadyExists,
    DataDiskFull,
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    shortened,
)

ERROR_CODES: tuple[tuple[type[JobyardError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    # gRPC has no "payment required"; out of credits is a quota that is used up.
    (PaymentRequired, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
)


def public_message(exc: BaseException) -> str:
    """``str(exc)`` as it is answered and logged: its middle cut when long (the start names
    the problem, the end usually says what would be accepted). A 100 KB name in a message
    overflowed gRPC's metadata limit, which the client then saw as RESOURCE_EXHAUSTED."""
    return shortened(str(exc))


# gRPC code -> HTTP status of the HTTPS face (UCloud's CommonErrorMessage statuses).
HTTP_STATUSES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.INTERNAL: 500,
}


def http_status_for(exc: JobyardError) -> tuple[int, str]:
    """``(HTTP status, errorCode)`` for ``exc`` (402 for no credits: HTTP has its own)."""
    if isinstance(exc, PaymentRequired):
        return 402, "PAYMENT_REQUIRED"
    code = code_for(exc)
    return HTTP_STATUSES.get(code, 500), code.name


def disk_full(exc: BaseException) -> DataDiskFull | None:
    """A full data disk, however it surfaced (an OSError ENOSPC or EDQUOT, SQLite's
    "database or disk is full"), as the RESOURCE_EXHAUSTED it is; else None."""
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    full = full or (
        isinstance(exc, sqlite3.OperationalError)
        and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    )
    return DataDiskFull(f"the data disk is full: {exc}") if full else None


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
