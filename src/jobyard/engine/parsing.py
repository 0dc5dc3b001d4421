"""Workflow parsing away from the event loop: in a child process, bounded.

Parsing a large YAML document is seconds of pure CPU and a large object graph; in a thread
it would still hold the GIL (and trigger long garbage collections) in the server process,
so every other client would wait. Here each parse runs in a fresh child process
(:mod:`jobyard.sandbox`) with a memory and a CPU-time limit, killed past a wall-time limit;
at most :data:`MAX_PARSES_AT_ONCE` run at once and at most :data:`MAX_PARSES_WAITING` wait,
beyond which a submission is refused with RESOURCE_EXHAUSTED. A child that dies (a limit
hit, a crash in libyaml) refuses just that document. The byte limit is checked first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Protocol

from jobyard.config import parse_duration
from jobyard.domain.errors import InvalidArgument, ResourceExhausted
from jobyard.domain.workflows import WorkflowLimits, WorkflowSpec, check_size, parse_workflow
from jobyard.sandbox import PARSE_CPU_SECONDS, PARSE_MEMORY_BYTES, loads

log = logging.getLogger("jobyard.workflows")

MAX_PARSES_AT_ONCE = 1  # a core for parsing, the other for serving (2-core hosts)
MAX_PARSES_WAITING = 16
PARSE_TIMEOUT_SECONDS = 90.0  # wall time, above the CPU limit


class WorkflowParser(Protocol):
    """Turns a workflow document into a validated spec (raises InvalidArgument)."""

    async def parse(self, text: str) -> WorkflowSpec: ...


class InlineWorkflowParser:
    """Parses on the calling thread: for unit tests and tools, never for the server."""

    def __init__(self, limits: WorkflowLimits | None = None) -> None:
        self._limits = limits or WorkflowLimits()

    async def parse(self, text: str) -> WorkflowSpec:
        return parse_workflow(text, parse_duration, self._limits)


class ProcessWorkflowParser:
    """Parses each document in a fresh, resource-limited child process."""

    def __init__(self, limits: WorkflowLimits | None = None) -> None:
        self._limits = limits or WorkflowLimits()
        self._slots = asyncio.Semaphore(MAX_PARSES_AT_ONCE)
        self._waiting = 0

    async def parse(self, text: str) -> WorkflowSpec:
        check_size(text, self._limits)  # before the document is copied anywhere
        if self._waiting >= MAX_PARSES_WAITING:
            raise ResourceExhausted(
                f"too many workflows being parsed ({MAX_PARSES_WAITING} waiting): retry later"
            )
        self._waiting += 1
        try:
            async with self._slots:
                return await self._run(text)
        finally:
            self._waiting -= 1

    async def _run(self, text: str) -> WorkflowSpec:
        limits = self._limits
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobyard.sandbox", str(limits.max_bytes), str(limits.max_jobs),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(child.communicate(text.encode()), PARSE_TIMEOUT_SECONDS)
        except TimeoutError:
            out = b""
        finally:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
        return self._result(out, child.returncode)

    @staticmethod
    def _result(out: bytes, returncode: int | None) -> WorkflowSpec:
        try:
            verdict, value = loads(out)
        except Exception:
            # Died (memory or CPU limit, a crash) or timed out: this document is refused.
            log.warning("workflow parser child failed | exitCode=%s", returncode)
            raise InvalidArgument(
                f"invalid workflow: it could not be parsed within the parser's limits "
                f"({PARSE_MEMORY_BYTES >> 20} MB, {PARSE_CPU_SECONDS} s of CPU)"
            ) from None
        if verdict != "ok" or not isinstance(value, WorkflowSpec):
            raise InvalidArgument(str(value))
        return value


__all__ = ["InlineWorkflowParser", "ProcessWorkflowParser", "WorkflowParser"]
