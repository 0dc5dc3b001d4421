"""What a Slurm job of jobyard's carries: the launch file, the batch script, sbatch's options.

Files of one job (all under the job's state dir, which must be on a file system every node
shares at the same path)::

    STATE/launch.json       what the allocation needs to run the ranks (root's, 0600: it
                            holds the secret environment; removed once the job ended)
    STATE/slurm/batch.sh    the batch script: runs the launcher inside the allocation
    STATE/slurm/batch.log   the batch script's own diagnostics (never the job's output)
    STATE/info/             the rank files every rank shares (node-<r>.txt, ...)
    <rank dir>/started      written by the rank's step once its command was spawned
    <rank dir>/exit         the rank's exit status, by the local runtime's shim (the
                            shell's $?: 128+N for signal N; 125 + launch-error: setup failed)
    <rank dir>/oom          present when the rank's memory cgroup saw an OOM kill
    <rank dir>/done         the step's last word: exit and oom are final
    <rank dir>/step.log     the rank's step diagnostics

Rank dirs are the local runtime's (``STATE`` for rank 0, ``STATE/rank-<r>`` after it), so a
Slurm job's ends read like a local job's.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobyard.domain.jobs import JobSpec
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local.mounts import JobView
from jobyard.runtime.local.supervisors import rank_dir
from jobyard.runtime.local.users import JobIds

LAUNCH_FILE = "launch.json"
SLURM_SUBDIR = "slurm"
BATCH_SCRIPT = "batch.sh"
BATCH_LOG = "batch.log"
STARTED_FILE = "started"
EXIT_FILE = "exit"
OOM_FILE = "oom"
DONE_FILE = "done"
STEP_LOG = "step.log"
STOP_MARK = "stop-requested"
JOB_NAME_PREFIX = "jobyard-"
# Slurm's own limit trails jobyard's by this much: jobyard stops the job at its limit (with
# the grace a user's stop has); Slurm's TIMEOUT only ends a job jobyard could not stop.
TIME_LIMIT_MARGIN_SECONDS = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class SlurmLaunch:
    """Everything a rank needs inside the allocation, as written to ``launch.json``."""

    job_id: str
    command: str
    args: tuple[str, ...]
    environment: Mapping[str, str]  # the job's environment and secret environment, merged
    network: str
    replicas: int
    cores: int  # whole cores each rank may count on (cores.txt)
    uid: int  # the job's own (the local runtime's uid policy), never root
    gid: int
    state_dir: str
    workdir: str
    outputs: tuple[str, ...]  # each rank's output file, in rank order
    stop_grace_seconds: float = 0.1  # SIGTERM to SIGKILL when a failed rank stops the others
    hidden: tuple[str, ...] = ()  # host paths no job sees (the data dir, the certificates)
    rank_job_id: str = ""  # what ranks read in job_id.txt ("" = job_id; LaunchRequest's)

    @classmethod
    def of(
        cls, request: LaunchRequest, ids: JobIds, cores: int, grace: float,
        hidden: tuple[Path, ...] = (),
    ) -> SlurmLaunch:  # fmt: skip
        spec = request.spec
        return cls(
            job_id=request.job_id,
            command=spec.command,
            args=tuple(spec.args),
            environment={**spec.environment, **spec.secret_environment},
            network=spec.network,
            replicas=spec.replicas,
            cores=cores,
            uid=ids.uid,
            gid=ids.gid,
            state_dir=str(request.state_dir),
            workdir=str(request.workdir),
            outputs=tuple(str(request.output(rank)) for rank in range(spec.replicas)),
            stop_grace_seconds=grace,
            hidden=tuple(map(str, hidden)),
            rank_job_id=request.rank_job_id,
        )

    def write(self, path: Path) -> None:
        """Root-only: the file holds the secret environment."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(dataclasses.asdict(self), out)

    @classmethod
    def read(cls, path: Path) -> SlurmLaunch:
        raw: dict[str, Any] = json.loads(path.read_text())
        raw["args"] = tuple(raw["args"])
        raw["outputs"] = tuple(raw["outputs"])
        raw["hidden"] = tuple(raw.get("hidden", ()))
        return cls(**raw)

    def rank_dir(self, rank: int) -> Path:
        return rank_dir(Path(self.state_dir), rank)

    @property
    def info_job_id(self) -> str:
        """The id the ranks read in ``job_id.txt``."""
        return self.rank_job_id or self.job_id

    @staticmethod
    def rank_dir_of(state_dir: Path, rank: int) -> Path:
        return rank_dir(state_dir, rank)

    def view(self) -> JobView:
        """What the job may not see, and who owns its private /run (mounts.py)."""
        return JobView(self.uid, self.gid, tuple(Path(p) for p in self.hidden))

    def request(self) -> LaunchRequest:
        """The launch as the local runtime's helpers (rank files, mounts) take it."""
        spec = JobSpec(command=self.command, args=self.args, network=self.network,
                       replicas=self.replicas)  # fmt: skip
        outputs = tuple(Path(p) for p in self.outputs)
        return LaunchRequest(self.job_id, spec, outputs[0], Path(self.state_dir),
                             Path(self.workdir), outputs[1:])  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class SbatchOptions:
    """Where and under which account jobs go (the ``slurm:`` config section)."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    default_time_limit_seconds: float = 86400.0


def slurm_time(seconds: float) -> str:
    """``--time`` as Slurm reads it: ``[days-]hours:minutes:seconds``, rounded up."""
    total = max(60, math.ceil(seconds))  # Slurm enforces limits at a minute's grain at best
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def time_limit(spec: JobSpec, options: SbatchOptions) -> str:
    """Slurm's limit for the job: always one (22.05 has jobs without --time run forever)."""
    if spec.time_limit_seconds:
        return slurm_time(spec.time_limit_seconds + TIME_LIMIT_MARGIN_SECONDS)
    return slurm_time(options.default_time_limit_seconds)


def cpus_per_task(spec: JobSpec) -> int:
    """maxCPU (percent of one core, for the job as a whole) shared by its ranks."""
    cores = math.ceil((spec.resources.max_cpu or 100) / 100)
    return max(1, math.ceil(cores / spec.replicas))


def sbatch_argv(sbatch: str, request: LaunchRequest, options: SbatchOptions) -> list[str]:
    """The sbatch command for the job: limits mapped, the batch script last."""
    spec = request.spec
    slurm_dir = request.state_dir / SLURM_SUBDIR
    argv = [
        sbatch,
        "--parsable",
        f"--job-name={JOB_NAME_PREFIX}{request.job_id}",
        f"--time={time_limit(spec, options)}",
        f"--ntasks={spec.replicas}",
        f"--cpus-per-task={cpus_per_task(spec)}",
        f"--output={slurm_dir / BATCH_LOG}",
        "--open-mode=append",
        f"--chdir={slurm_dir}",
        # The allocation gets sbatch's own environment, which the runtime keeps to a bare
        # PATH (SlurmTools.run): nothing of the server's reaches it. Not --export=NONE:
        # that implies --get-user-env, a login shell on the node (+2.3 s per job here).
        "--export=ALL",
        "--no-requeue",  # a job runs once: a requeue would run its command twice
        "--kill-on-invalid-dep=yes",
    ]
    if spec.replicas > 1:
        argv.append(f"--nodes=1-{spec.replicas}")
    memory = spec.resources.max_memory
    if memory and spec.replicas == 1:
        argv.append(f"--mem={memory}")
    elif memory:  # the job's memory, shared by every CPU of its ranks
        share = math.ceil(memory / (spec.replicas * cpus_per_task(spec)))
        argv.append(f"--mem-per-cpu={share}")
    for flag, value in (("partition", options.partition), ("account", options.account),
                        ("qos", options.qos)):  # fmt: skip
        if value:
            argv.append(f"--{flag}={value}")
    argv.append(str(slurm_dir / BATCH_SCRIPT))
    return argv


def batch_script(python: str, state_dir: Path, replicas: int) -> str:
    """Runs the launcher as the allocation's first process (root, as jobyard submitted it),
    or for a one-rank job that rank's step itself (one interpreter start less); every rank
    is dropped to the job user after it is isolated."""
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    run = "launcher" if replicas > 1 else "step"
    rank = "" if replicas > 1 else " 0"
    return (
        "#!/bin/sh\n"
        "# generated by jobyard: runs the job's ranks inside this allocation\n"
        f"export PATH={path}\n"
        f"exec {shlex.quote(python)} -m jobyard.runtime.slurm.{run} "
        f"{shlex.quote(str(state_dir))}{rank}\n"
    )
