"""The native model: pure data and rules, no I/O."""

from jobyard.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    LaunchError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StaleTransition,
    Unauthenticated,
)
from jobyard.domain.jobs import Job, JobSpec, Resources, StatusUpdate
from jobyard.domain.status import Status, TerminationReason

__all__ = [
    "FailedPrecondition",
    "InvalidArgument",
    "Job",
    "JobSpec",
    "JobyardError",
    "LaunchError",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Resources",
    "StaleTransition",
    "Status",
    "StatusUpdate",
    "TerminationReason",
    "Unauthenticated",
]
