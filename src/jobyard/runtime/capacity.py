"""Capacity: what one backend can run, and how much of it at once.

Each backend (Runtime adapter) owns one. :meth:`Capacity.check` refuses at submit a job that
could never run there (more CPU or memory than the host, a CPU it lacks, more than the
configured totals), so it never blocks the queue; :meth:`Capacity.fits` is admission:
whether the oldest waiting job of that backend may start next to the jobs it holds.

Admission is strictly in submission order per backend: the oldest queued job starts when it
fits, and nothing overtakes it. A job without a CPU (or memory) limit counts as the whole
bound, so it runs alone under a bound.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import Job, Resources


def host_memory_mb() -> int:
    """This host's physical memory in MB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


@dataclasses.dataclass(frozen=True, slots=True)
class Capacity:
    max_jobs: int = 100  # jobs held at once (joblet.maxConcurrentJobs for the local backend)
    max_cpu: int = 0  # percent of one core, summed over held jobs; 0 = unbounded
    max_memory: int = 0  # MB, summed over held jobs; 0 = unbounded
    cpus: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)  # per job
    memory_mb: int = 0  # the most one job may ask for; 0 = not checked
    what: str = "system"  # names the limits in errors ("system", "partition debug")

    def check(self, res: Resources) -> None:
        """Refuse at submit a job that could never fit, so it does not block the queue."""
        self._check_host(res)
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

    def _check_host(self, res: Resources) -> None:
        if res.max_cpu > self.cpus * 100:
            raise InvalidArgument(
                f"job creation failed: maxCPU {res.max_cpu}% exceeds {self.what} limits "
                f"({self.cpus} cores = {self.cpus * 100}%)"
            )
        if self.memory_mb and res.max_memory > self.memory_mb:
            raise InvalidArgument(
                f"job creation failed: maxMemory {res.max_memory} MB exceeds {self.what} "
                f"limits ({self.memory_mb} MB)"
            )
        if res.highest_cpu >= self.cpus:
            raise InvalidArgument(
                f"invalid cpuCores {res.cpu_cores!r}: this host has CPUs 0-{self.cpus - 1}"
            )

    def fits(self, held: Sequence[Job], job: Job) -> bool:
        """Whether ``job`` may start next to the ``held`` ones."""
        if len(held) >= self.max_jobs:
            return False
        specs = [j.spec.resources for j in held]
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


__all__ = ["Capacity", "host_memory_mb"]
