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
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobyard.domain.errors import FailedPrecondition, LaunchError
from jobyard.domain.jobs import NETWORK_NONE, JobSpec
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local import mounts
from jobyard.runtime.local.runtime import (
    ENV_STAGE,
    JOB_LANG,
    JOB_PATH,
    OPEN_STAGE,
    SHELL,
    SHIM_SCRIPT,
    TOOL_PATH,
)
from jobyard.runtime.local.supervisors import rank_dir
from jobyard.runtime.local.users import JobIds
from jobyard.runtime.ranks import RankInfo

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
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STEP_SCRIPT = Path(__file__).with_name("step.py")
LAUNCHER_SCRIPT = Path(__file__).with_name("launcher.py")


@dataclasses.dataclass(frozen=True, slots=True)
class RankLaunch:
    """One rank, ready to spawn: everything that does not depend on the allocation."""

    argv: tuple[str, ...]  # the isolation chain (see :func:`chain`)
    env: str  # the job's environment as the chain's last stage reads it (``export ...``)
    output: str  # the rank's output file
    dir: str  # the rank dir: the chain's cwd, where its exit, started, ... files are


@dataclasses.dataclass(frozen=True, slots=True)
class SlurmLaunch:
    """What the allocation needs, as written to ``launch.json`` (stdlib JSON, so that the
    in-allocation programs need nothing of jobyard to read it)."""

    job_id: str
    state_dir: str
    ranks: tuple[RankLaunch, ...]
    stop_grace_seconds: float = 0.1  # SIGTERM to SIGKILL when a failed rank stops the others
    # Made on each node before the ranks start: the read-only root must hold them.
    mount_points: tuple[str, ...] = (mounts.WORK_DIR, mounts.UCLOUD_DIR)

    def write(self, path: Path) -> None:
        """Root-only: the file holds the secret environment."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(dataclasses.asdict(self), out)

    @classmethod
    def read(cls, path: Path) -> SlurmLaunch:
        raw: dict[str, Any] = json.loads(path.read_text())
        ranks = tuple(RankLaunch(tuple(r["argv"]), r["env"], r["output"], r["dir"])
                      for r in raw["ranks"])  # fmt: skip
        return cls(raw["job_id"], raw["state_dir"], ranks, raw["stop_grace_seconds"],
                   tuple(raw["mount_points"]))  # fmt: skip

    @property
    def replicas(self) -> int:
        return len(self.ranks)

    @staticmethod
    def rank_dir_of(state_dir: Path, rank: int) -> Path:
        return rank_dir(state_dir, rank)


@dataclasses.dataclass(frozen=True, slots=True)
class ChainTools:
    """Absolute paths of the launch chain's programs, as on the nodes (looked up here:
    the nodes are expected to have util-linux where this host has it)."""

    unshare: str
    setpriv: str
    mount: str

    @classmethod
    def find(cls) -> ChainTools:
        found = {name: shutil.which(name, path=TOOL_PATH) for name in ("unshare", "setpriv",
                                                                       "mount")}  # fmt: skip
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise FailedPrecondition(f"the slurm backend needs {', '.join(missing)} (util-linux)")
        return cls(**{name: str(path) for name, path in found.items()})


def chain(tools: ChainTools, request: LaunchRequest, rank: int, ids: JobIds) -> tuple[str, ...]:
    """One rank's isolation chain: the local runtime's (OPEN_STAGE, unshare, its shim and
    mounts, setpriv), less its cgroups: the rank stays in Slurm's. TODO: one argv builder
    shared with runtime/local once its launch chain settles."""
    namespaces = ["--pid", "--mount", "--ipc", "--uts", "--propagation", "private"]
    if request.spec.network == NETWORK_NONE:
        namespaces.append("--net")  # each rank its own: ranks may be on different nodes
    state = rank_dir(request.state_dir, rank)
    shim = [SHELL, str(SHIM_SCRIPT), mounts.WORK_DIR, tools.mount,
            str(state / mounts.FSTAB_FILE), "--"]  # fmt: skip
    drop = [tools.setpriv, f"--reuid={ids.uid}", f"--regid={ids.gid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]  # fmt: skip
    command = [SHELL, "-c", ENV_STAGE, "jobyard", request.spec.command, *request.spec.args]
    return (SHELL, "-c", OPEN_STAGE, "jobyard-open", tools.unshare, *namespaces, "--", *shim,
            *drop, *command)  # fmt: skip


def env_script(env: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines (names checked: they are not quoted)."""
    bad = [name for name in env if not _ENV_NAME.fullmatch(name)]
    if bad:
        raise LaunchError(f"invalid environment variable name {bad[0]!r}")
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def rank_env(request: LaunchRequest, info: RankInfo, rank: int) -> dict[str, str]:
    """As the local runtime gives it; the step adds JOBYARD_NODES once nodes are known."""
    env = {"PATH": JOB_PATH, "HOME": mounts.WORK_DIR, "LANG": JOB_LANG}
    env |= request.spec.environment
    env |= request.spec.secret_environment
    env |= info.environment(rank)  # last: a job cannot be told a wrong rank
    return env


def prepare_ranks(
    request: LaunchRequest, ids: JobIds, cores: int, grace: float, view: mounts.JobView,
    tools: ChainTools,
) -> SlurmLaunch:  # fmt: skip
    """Write each rank's mounts and the files every rank shares (node names come from the
    allocation), and the launch of every rank."""
    replicas = request.spec.replicas
    info = RankInfo(request.rank_job_id, replicas, cores)  # UCloud's id on its face
    mounts.write_shared_info(request.state_dir, info)
    ranks = []
    for rank in range(replicas):
        directory = rank_dir(request.state_dir, rank)
        mounts.write_rank_mounts(request, rank, directory, view)
        ranks.append(RankLaunch(chain(tools, request, rank, ids),
                                env_script(rank_env(request, info, rank)),
                                str(request.output(rank)), str(directory)))  # fmt: skip
    return SlurmLaunch(request.job_id, str(request.state_dir), tuple(ranks), grace)


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
    or for a one-rank job that rank's step itself (one interpreter start less). Both are
    stdlib-only scripts run without site packages (``-S``): they start in milliseconds."""
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    script = LAUNCHER_SCRIPT if replicas > 1 else STEP_SCRIPT
    rank = "" if replicas > 1 else " 0"
    return (
        "#!/bin/sh\n"
        "# generated by jobyard: runs the job's ranks inside this allocation\n"
        f"export PATH={path}\n"
        f"exec {shlex.quote(python)} -S -E -s {shlex.quote(str(script))} "
        f"{shlex.quote(str(state_dir))}{rank}\n"
    )
