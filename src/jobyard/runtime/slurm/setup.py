"""The slurm backend as the server's config describes it (the ``slurm:`` section)."""

from __future__ import annotations

import sys

from jobyard.config import ServerConfig
from jobyard.domain.errors import InvalidArgument
from jobyard.logs import JobLayout
from jobyard.runtime.capacity import Capacity
from jobyard.runtime.local import LocalRuntimeConfig
from jobyard.runtime.slurm.launch import SbatchOptions
from jobyard.runtime.slurm.runtime import SlurmRuntime, SlurmRuntimeConfig

UNCHECKED_CPUS = 4096  # maxCpus 0: the cluster decides what a job may ask for


def slurm_runtime(
    config: ServerConfig, layout: JobLayout, local: LocalRuntimeConfig
) -> SlurmRuntime:
    """Jobs run as ``local``'s uid policy assigns them, with its hidden paths."""
    slurm = config.slurm
    shared = slurm.shared_dir or layout.data_dir
    if shared != layout.data_dir and shared not in layout.data_dir.parents:
        raise InvalidArgument(
            f"config: slurm.sharedDir {shared} must hold the data directory {layout.data_dir} "
            "(every node reads and writes the jobs' files there)"
        )
    options = SbatchOptions(slurm.partition, slurm.account, slurm.qos,
                            slurm.default_time_limit_seconds)  # fmt: skip
    capacity = Capacity(max_jobs=slurm.max_jobs, cpus=slurm.max_cpus or UNCHECKED_CPUS,
                        memory_mb=slurm.max_memory, what="slurm")  # fmt: skip
    return SlurmRuntime(
        SlurmRuntimeConfig(
            uids=local.uid_policy(),
            options=options,
            shared_dir=shared,
            python=slurm.python or sys.executable,
            tools_dir=slurm.tools_dir,
            hidden=local.hidden,
            stop_grace_seconds=config.joblet.cleanup_timeout_seconds,
            capacity=capacity,
        ),
        layout,
    )
