"""Job status, termination reason and the one transition table.

::

                submit
                  |
       SCHEDULED--+--> QUEUED --> INITIALIZING --> RUNNING <--> SUSPENDED
       (start time     (capacity,    (cgroup, ns,     |  \\
        in future)      deps)         workdir)        |   STOPPING (stop requested, signals sent)
                         |                            v         |
                         |   COMPLETED (exit 0) | FAILED | STOPPED
                         |                            ^
                         `-- in a batch system's queue (Slurm PENDING): straight to RUNNING
                             once it runs; STOPPING when cancelled; FAILED if it never ran

Terminal: COMPLETED, FAILED, STOPPED. A terminal job never changes status again.
Every status change in the system goes through :data:`TRANSITIONS`; the store applies
it atomically (compare-and-set on the current status), so a stop racing an exit has
exactly one winner.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        """Processes may exist for the job (the runtime knows it)."""
        return self in ACTIVE


class TerminationReason(enum.StrEnum):
    """Why a job ended; separate from its status (RIME's status vs reason)."""

    EXITED = "EXITED"
    OOM_KILLED = "OOM_KILLED"
    TIME_LIMIT = "TIME_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"  # the job wrote more than maxOutputBytes
    DISK_LIMIT = "DISK_LIMIT"  # the job wrote more than its maxDisk to /work and its output
    USER_STOP = "USER_STOP"
    NO_CREDITS = "NO_CREDITS"
    LAUNCH_ERROR = "LAUNCH_ERROR"
    DEPENDENCY_FAILED = "DEPENDENCY_FAILED"
    LOST = "LOST"
    INTERNAL_ERROR = "INTERNAL_ERROR"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.STOPPED})
ACTIVE = frozenset({Status.INITIALIZING, Status.RUNNING, Status.SUSPENDED, Status.STOPPING})

_S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.SCHEDULED: frozenset({_S.QUEUED, _S.STOPPED}),
    # A backend that queues (Slurm) holds the job QUEUED until it runs: it goes straight to
    # RUNNING, or is stopped (STOPPING: cancelled in the backend) or fails there.
    _S.QUEUED: frozenset({_S.INITIALIZING, _S.RUNNING, _S.STOPPING, _S.FAILED, _S.STOPPED}),
    _S.INITIALIZING: frozenset({_S.RUNNING, _S.STOPPING, _S.FAILED, _S.STOPPED}),
    _S.RUNNING: frozenset({_S.SUSPENDED, _S.STOPPING, _S.COMPLETED, _S.FAILED, _S.STOPPED}),
    _S.SUSPENDED: frozenset({_S.RUNNING, _S.STOPPING, _S.STOPPED, _S.FAILED}),
    # Once a stop is requested the only way out is STOPPED: an exit that races the stop
    # does not turn a user's stop into COMPLETED or FAILED.
    _S.STOPPING: frozenset({_S.STOPPED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.STOPPED: frozenset(),
}


def can_transition(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]


def predecessors(new: Status) -> frozenset[Status]:
    """The statuses from which ``new`` may be entered (used for compare-and-set)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if new in targets)
