"""The slurm backend: jobs handed to a Slurm cluster (see :mod:`.runtime`).

Nothing is imported here: the in-allocation programs (:mod:`.launcher`, :mod:`.step`) start
once per job on the nodes, and must not pay for the server's modules.
"""
