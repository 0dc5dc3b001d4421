"""The slurm backend: jobs handed to a Slurm cluster (see :mod:`.runtime`)."""

from jobyard.runtime.slurm.runtime import SlurmRuntime, SlurmRuntimeConfig

__all__ = ["SlurmRuntime", "SlurmRuntimeConfig"]
