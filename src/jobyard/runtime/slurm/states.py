"""What Slurm says about a job, read from its tools' text output, mapped to the native model.

Parsed from ``scontrol show job -o`` (one line of ``Key=Value`` per job), ``squeue -h -t all
-o '%i|%T|%r'`` and ``sacct -P -n -o JobID,State,ExitCode,Start,End`` (``sacct --json`` is
broken on 22.05). Nothing here runs a process: the output is given, so the mapping is
unit-tested over recorded text.

Slurm state -> jobyard:

=================================  ====================================================
PENDING, REQUEUED, ..._HOLD          QUEUED (waiting in Slurm's queue)
CONFIGURING, RUNNING, COMPLETING     RUNNING (COMPLETING: ending, its end not yet final)
SUSPENDED                            SUSPENDED
COMPLETED                            COMPLETED, exit code 0
FAILED                               FAILED with the real exit code (or signal)
CANCELLED                            STOPPED / USER_STOP
TIMEOUT, DEADLINE                    STOPPED / TIME_LIMIT
OUT_OF_MEMORY                        FAILED / OOM_KILLED
NODE_FAIL, BOOT_FAIL, PREEMPTED      FAILED / LOST
=================================  ====================================================
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import datetime

from jobyard.domain.status import TerminationReason
from jobyard.runtime.base import ExitInfo

QUEUED_STATES = frozenset(
    {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
)
RUNNING_STATES = frozenset({"CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "RESIZING",
                            "SIGNALING", "STAGE_OUT", "STOPPED"})  # fmt: skip
ENDED_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY", "NODE_FAIL",
     "BOOT_FAIL", "PREEMPTED", "REVOKED"}
)  # fmt: skip
_PAIR = re.compile(r"(\S+?)=(\S*)")
_EXIT = re.compile(r"(\d+):(\d+)")


@dataclasses.dataclass(frozen=True, slots=True)
class SlurmJob:
    """One job as Slurm reports it."""

    job_id: str
    state: str  # the base state, flags such as "+" or " by 0" removed
    reason: str = ""
    exit_code: int | None = None  # the batch script's exit status, when known
    exit_signal: int = 0
    start: datetime | None = None
    end: datetime | None = None
    time_limit: str = ""  # as Slurm shows it, e.g. "00:05:00"
    nodes: tuple[str, ...] = ()

    @property
    def queued(self) -> bool:
        return self.state in QUEUED_STATES

    @property
    def ended(self) -> bool:
        """Slurm's final word: the job has ended and its state will not change again."""
        return self.state in ENDED_STATES

    @property
    def ran(self) -> bool:
        """Whether the job ever started running (a start time in the past is set then)."""
        return self.start is not None and self.state not in QUEUED_STATES

    def exit_info(self) -> ExitInfo:
        """The job's end as Slurm alone tells it (when no rank recorded its own end)."""
        return exit_info(self)


def base_state(raw: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETING+`` -> ``COMPLETING``."""
    return raw.split()[0].rstrip("+*") if raw.strip() else ""


def parse_time(value: str) -> datetime | None:
    """Slurm's local ``2026-12-01T09:23:13`` (Unknown/None/N/A = no time), as local time."""
    if not value or value in ("Unknown", "None", "N/A", "(null)"):
        return None
    try:
        return datetime.fromisoformat(value).astimezone()
    except ValueError:
        return None


def parse_scontrol(text: str) -> dict[str, SlurmJob]:
    """Jobs by id from ``scontrol show job -o`` (one job per line)."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        fields = dict(_PAIR.findall(line))
        if "JobId" not in fields:
            continue
        code, signal = _exit_code(fields.get("ExitCode", ""))
        job = SlurmJob(
            job_id=fields["JobId"],
            state=base_state(fields.get("JobState", "")),
            reason=fields.get("Reason", ""),
            exit_code=code,
            exit_signal=signal,
            start=parse_time(fields.get("StartTime", "")),
            end=parse_time(fields.get("EndTime", "")),
            time_limit=fields.get("TimeLimit", ""),
            nodes=tuple(filter(None, [fields.get("NodeList", "")])),
        )
        jobs[job.job_id] = job
    return jobs


def parse_squeue(text: str) -> dict[str, SlurmJob]:
    """Jobs by id from ``squeue -h -t all -o '%i|%T|%r'``: states only."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            jobs[parts[0]] = SlurmJob(
                parts[0], base_state(parts[1]), parts[2] if len(parts) > 2 else ""
            )
    return jobs


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """Jobs by id from ``sacct -P -n -X -o JobID,State,ExitCode,Start,End``."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5 or "." in parts[0]:
            continue  # steps (123.batch) carry no state of the job's own
        code, signal = _exit_code(parts[2])
        jobs[parts[0]] = SlurmJob(parts[0], base_state(parts[1]), "", code, signal,
                                  parse_time(parts[3]), parse_time(parts[4]))  # fmt: skip
    return jobs


def _exit_code(value: str) -> tuple[int | None, int]:
    match = _EXIT.fullmatch(value.strip())
    if match is None:
        return None, 0
    return int(match.group(1)), int(match.group(2))


def exit_info(job: SlurmJob) -> ExitInfo:
    """Map an ended job's state to how it ended (see the module's table)."""
    state, ended_at = job.state, job.end
    if state == "COMPLETED":
        return ExitInfo(exit_code=0, ended_at=ended_at)
    if state == "CANCELLED":
        return _stopped(job, TerminationReason.USER_STOP, "cancelled in Slurm")
    if state in ("TIMEOUT", "DEADLINE"):
        return _stopped(job, TerminationReason.TIME_LIMIT, "Slurm's time limit was reached")
    if state == "OUT_OF_MEMORY":
        # The kernel's OOM killer ends with SIGKILL (Slurm may record 0:125 for it).
        return ExitInfo(exit_code=job.exit_code or 128 + 9, oom_killed=True, ended_at=ended_at,
                        message="killed: out of memory (Slurm OUT_OF_MEMORY)")  # fmt: skip
    if state == "FAILED" and (job.reason != "JobLaunchFailure" or job.exit_signal):
        return _failed(job)
    if state == "FAILED":
        return ExitInfo(exit_code=job.exit_code, launch_failed=True, ended_at=ended_at,
                        message="launch failed: Slurm could not launch the job")  # fmt: skip
    what = {"NODE_FAIL": "its node failed", "BOOT_FAIL": "its node failed to boot",
            "PREEMPTED": "it was preempted", "REVOKED": "it was revoked"}.get(
        state, f"Slurm reports {state} ({job.reason or 'no reason'})")  # fmt: skip
    return ExitInfo(exit_code=None, lost=True, ended_at=ended_at, message=f"lost in Slurm: {what}")


def _failed(job: SlurmJob) -> ExitInfo:
    if job.exit_signal:
        return ExitInfo(exit_code=128 + job.exit_signal, signal=job.exit_signal,
                        ended_at=job.end)  # fmt: skip
    return ExitInfo(exit_code=job.exit_code, ended_at=job.end)


def _stopped(job: SlurmJob, reason: TerminationReason, message: str) -> ExitInfo:
    return ExitInfo(exit_code=job.exit_code, stopped=reason, ended_at=job.end, message=message)


def merge(*sources: Iterable[SlurmJob]) -> dict[str, SlurmJob]:
    """Later sources win: e.g. squeue's states, then scontrol's details."""
    out: dict[str, SlurmJob] = {}
    for source in sources:
        out.update((job.job_id, job) for job in source)
    return out
