"""Slurm's command-line tools, run without blocking the event loop, and one shared poll.

Every command has a timeout and its errors become :class:`SlurmError` with Slurm's own
message. :class:`SlurmStates` is the fallback of truth for every watched job at once: one
``scontrol show job -o`` per interval (not one per job), sooner when poked (e.g. right
after a cancel). Jobs report their own starts and ends through files (``launch.py``); this
poll only catches what no file tells: a job cancelled while queued, a node failure, ...
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
from pathlib import Path

from jobyard.domain.errors import FailedPrecondition
from jobyard.runtime.slurm.states import SlurmJob, parse_sacct, parse_scontrol

log = logging.getLogger("jobyard.runtime.slurm")

COMMAND_TIMEOUT_SECONDS = 30.0
TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SLURM_ENV = ("SLURM_CONF",)
TOOLS = ("sbatch", "scontrol", "scancel", "squeue", "sacct")


def tool_env() -> dict[str, str]:
    """All the tools (and, through sbatch --export=ALL, the allocation) see of the server's
    environment: a fixed PATH, and where Slurm's config and munge are when set."""
    env = {"PATH": TOOL_PATH}
    env |= {name: os.environ[name] for name in SLURM_ENV if name in os.environ}
    return env


class SlurmError(FailedPrecondition):
    """A Slurm tool refused or failed (its message included)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SlurmTools:
    """Absolute paths of the tools (from ``toolsDir``, else PATH)."""

    sbatch: str
    scontrol: str
    scancel: str
    squeue: str
    sacct: str  # may be missing: accounting is optional ("" then)

    @classmethod
    def find(cls, tools_dir: str = "") -> SlurmTools:
        found: dict[str, str] = {}
        for name in TOOLS:
            path = shutil.which(name, path=tools_dir or None)
            if path is None and name != "sacct":
                where = tools_dir or "PATH"
                raise FailedPrecondition(f"the slurm backend needs {name} (not found in {where})")
            found[name] = path or ""
        return cls(**found)

    async def run(self, *argv: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        """Run a tool; its stdout, or SlurmError with its stderr."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=tool_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException as exc:  # timed out, or the caller was cancelled: never leave
            with contextlib.suppress(ProcessLookupError):  # a tool running unwatched
                proc.kill()
            await asyncio.shield(proc.wait())
            if isinstance(exc, TimeoutError):
                name = Path(argv[0]).name
                raise SlurmError(f"{name} did not answer within {timeout:g} s") from None
            raise
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise SlurmError(f"{Path(argv[0]).name}: {message}")
        return out.decode(errors="replace")

    async def show_jobs(self, job_id: str = "") -> dict[str, SlurmJob]:
        """``scontrol show job -o [ID]``; an id Slurm no longer knows gives {}."""
        argv = [self.scontrol, "show", "job", "-o", *([job_id] if job_id else [])]
        try:
            return parse_scontrol(await self.run(*argv))
        except SlurmError as exc:
            if "Invalid job id" in str(exc):
                return {}
            raise

    async def accounted(self, job_id: str) -> SlurmJob | None:
        """The job from accounting (``sacct -P``), for jobs scontrol has forgotten."""
        if not self.sacct:
            return None
        fields = "JobID,State,ExitCode,Start,End"
        try:
            text = await self.run(self.sacct, "-P", "-n", "-X", "-j", job_id, "-o", fields)
        except SlurmError as exc:
            log.info("sacct unavailable | slurmJobId=%s error=%s", job_id, exc)
            return None
        return parse_sacct(text).get(job_id)


class SlurmStates:
    """Slurm's view of every job, refreshed by one shared poll while anyone waits on it."""

    def __init__(self, tools: SlurmTools, interval_seconds: float = 1.0) -> None:
        self._tools = tools
        self._interval = interval_seconds
        self._jobs: dict[str, SlurmJob] = {}
        self._done = 0  # polls completed
        self._polling = False  # a poll is under way (its answer may predate a caller)
        self._changed = asyncio.Condition()
        self._poke = asyncio.Event()
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None

    async def next(self, job_id: str) -> SlurmJob | None:
        """Slurm's view of ``job_id`` from a poll that started after this call (None:
        Slurm does not know the job)."""
        self._watchers += 1
        try:
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._poll(), name="slurm-poll")
            target = self._done + (2 if self._polling else 1)
            async with self._changed:
                await self._changed.wait_for(lambda: self._done >= target)
            return self._jobs.get(job_id)
        finally:
            self._watchers -= 1

    def poke(self) -> None:
        """Poll now (a change is expected, e.g. right after a cancel)."""
        self._poke.set()

    async def _poll(self) -> None:
        while self._watchers:
            self._polling = True
            try:
                self._jobs = await self._tools.show_jobs()
            except Exception as exc:  # keep polling: the controller may come back
                log.warning("slurm poll failed | error=%s", exc)
            finally:
                self._polling = False
            async with self._changed:
                self._done += 1
                self._changed.notify_all()
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
