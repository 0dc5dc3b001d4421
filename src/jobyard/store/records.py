"""How each change alters a job record, in memory.

The one place both stores apply a change to a :class:`Job` (the SQLite store's live
records and the in-memory fake), so that they cannot drift apart. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from jobyard.domain.errors import StaleTransition
from jobyard.domain.jobs import Job, StatusUpdate
from jobyard.domain.status import Status, can_transition
from jobyard.store.base import SPEC_FIELDS


def created(job: Job) -> Job:
    """A new job as stored: its history is its first status."""
    return dataclasses.replace(
        job, updates=(StatusUpdate(job.created_at, job.status, job.message),)
    )


def transitioned(job: Job, new: Status, message: str, fields: dict[str, Any], at: datetime) -> Job:
    """``job`` moved to ``new`` (compare-and-set against the transition table)."""
    if not can_transition(job.status, new):
        raise StaleTransition(f"job {job.id}: cannot go from {job.status} to {new} (not allowed)")
    job = with_fields(job, fields)
    update = StatusUpdate(at, new, message)
    job = dataclasses.replace(job, status=new, message=message, updates=(*job.updates, update))
    if new.terminal:  # an ended job's secrets are erased, their names kept
        erased = dict.fromkeys(job.spec.secret_environment, "")
        job = dataclasses.replace(
            job, spec=dataclasses.replace(job.spec, secret_environment=erased)
        )
    return job


def annotated(
    job: Job, message: str, only_in: Iterable[Status], fields: dict[str, Any], at: datetime
) -> Job:
    """``job`` with ``fields`` set and a history entry in its current status."""
    if job.status not in set(only_in):
        raise StaleTransition(f"job {job.id}: not changed in status {job.status}")
    update = StatusUpdate(at, job.status, message)
    return dataclasses.replace(with_fields(job, fields), updates=(*job.updates, update))


def with_fields(job: Job, fields: dict[str, Any]) -> Job:
    """``job`` with ``fields`` set, those of :data:`SPEC_FIELDS` in its spec."""
    spec = {k: v for k, v in fields.items() if k in SPEC_FIELDS}
    rest = {k: v for k, v in fields.items() if k not in SPEC_FIELDS}
    if spec:
        job = dataclasses.replace(job, spec=dataclasses.replace(job.spec, **spec))
    return dataclasses.replace(job, **rest)
