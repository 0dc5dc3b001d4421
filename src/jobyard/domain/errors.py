"""The jobyard exception hierarchy.

::

    JobyardError                  base of every error jobyard raises on purpose
    ├── InvalidArgument           bad input; nothing was created       -> INVALID_ARGUMENT
    ├── NotFound                  no such job (or ambiguous prefix)     -> NOT_FOUND
    ├── FailedPrecondition        the job's status forbids the action   -> FAILED_PRECONDITION
    ├── PermissionDenied          the caller's role forbids the action  -> PERMISSION_DENIED
    ├── Unauthenticated           no usable client identity            -> UNAUTHENTICATED
    ├── ResourceExhausted         a configured capacity is full         -> RESOURCE_EXHAUSTED
    │   └── DataDiskFull          the store could not write: no space
    ├── PaymentRequired           the wallet cannot pay the job's first unit (HTTP 402)
                                                                        -> RESOURCE_EXHAUSTED
    ├── AlreadyExists             a request id reused for another request -> ALREADY_EXISTS
    ├── LaunchError               the runtime could not start the job   (job -> FAILED/LAUNCH_ERROR)
    ├── StaleTransition           compare-and-set lost a race in the store
    └── StoreError                the database did not take a change    -> INTERNAL

The server maps each to its gRPC code in one place (``server/errors.py``); messages are the
seed's wording where it has one ("job not found: ID").
"""

from __future__ import annotations


class JobyardError(Exception):
    """Base class: ``str(exc)`` is the user-facing message."""


class InvalidArgument(JobyardError):
    pass


class NotFound(JobyardError):
    pass


class FailedPrecondition(JobyardError):
    pass


class PermissionDenied(JobyardError):
    pass


class Unauthenticated(JobyardError):
    pass


class ResourceExhausted(JobyardError):
    pass


class DataDiskFull(ResourceExhausted):
    """The data disk has no room for the store's write (SQLite "database or disk is full")."""


class PaymentRequired(JobyardError):
    """Not enough credits: nothing was created. HTTP faces answer 402."""


class AlreadyExists(JobyardError):
    """A create's request id (idempotency key) was used before for a different request."""


class LaunchError(JobyardError):
    pass


class StaleTransition(JobyardError):
    """The job was not in an allowed predecessor status when the store tried the change."""


class StoreError(JobyardError):
    """The database did not take a change (a failed commit: disk full, I/O error)."""


def job_not_found(job_id: str) -> NotFound:
    return NotFound(f"job not found: {job_id}")


def job_not_running(job_id: str, status: str) -> FailedPrecondition:
    return FailedPrecondition(f"job is not running: {job_id} (current status: {status})")


# Messages (and log lines) often quote the input they refuse or report; past this many
# characters the middle is cut, so no answer or log repeats more than ~200 of them.
MAX_MESSAGE_CHARS = 240
_HEAD_CHARS, _TAIL_CHARS = 140, 80  # at most 220 characters kept of the original


def shortened(text: str) -> str:
    """``text``, its middle cut if it is longer than :data:`MAX_MESSAGE_CHARS`."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    cut = len(text) - _HEAD_CHARS - _TAIL_CHARS
    return f"{text[:_HEAD_CHARS]}...[{cut} characters cut]...{text[-_TAIL_CHARS:]}"
