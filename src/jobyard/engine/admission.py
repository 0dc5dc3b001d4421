"""Capacity: how many jobs, and how much CPU and memory, may be active at once.

Admission is strictly in submission order: the oldest queued job starts when it fits, and
nothing overtakes it. A job without a CPU (or memory) limit counts as the whole bound, so it
runs alone under a bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import Job, Resources


@dataclasses.dataclass(frozen=True, slots=True)
class Capacity:
    max_jobs: int
    max_cpu: int = 0  # percent of one core, summed over active jobs; 0 = unbounded
    max_memory: int = 0  # MB, summed over active jobs; 0 = unbounded

    def check(self, res: Resources) -> None:
        """Refuse at submit a job that could never fit, so it does not block the queue."""
        if self.max_cpu and res.max_cpu > self.max_cpu:
            raise InvalidArgument(
                f"job creation failed: maxCPU {res.max_cpu}% exceeds the capacity for "
                f"jobs ({self.max_cpu}%, jobyard.maxTotalCpu)"
            )
        if self.max_memory and res.max_memory > self.max_memory:
            raise InvalidArgument(
                f"job creation failed: maxMemory {res.max_memory} MB exceeds the capacity "
                f"for jobs ({self.max_memory} MB, jobyard.maxTotalMemory)"
            )

    def fits(self, active: Sequence[Job], job: Job) -> bool:
        """Whether ``job`` may start next to the ``active`` ones."""
        if len(active) >= self.max_jobs:
            return False
        specs = [j.spec.resources for j in active]
        res = job.spec.resources
        cpu = sum(self._cpu(r) for r in specs) + self._cpu(res)
        memory = sum(self._memory(r) for r in specs) + self._memory(res)
        return (not self.max_cpu or cpu <= self.max_cpu) and (
            not self.max_memory or memory <= self.max_memory
        )

    def _cpu(self, res: Resources) -> int:
        return res.max_cpu or self.max_cpu

    def _memory(self, res: Resources) -> int:
        return res.max_memory or self.max_memory


__all__ = ["Capacity"]
