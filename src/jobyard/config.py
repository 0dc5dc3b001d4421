"""Server configuration: the seed's ``joblet-config.yml`` keys plus jobyard's own sections.

Example::

    joblet:
      defaultCpuLimit: 100        # percent of one core
      defaultMemoryLimit: 512     # MB
      defaultIoLimit: 0           # bytes/s, 0 = unlimited
      maxConcurrentJobs: 100
      jobTimeout: "1h"            # wall-time limit of a job that asks for none; "0" = none
      cleanupTimeout: "100ms"     # grace between SIGTERM and SIGKILL on stop
    grpc:
      maxRecvMsgSize: 524288
      maxSendMsgSize: 4194304
      keepAliveTime: "30s"
    jobyard:
      backend: local              # where jobs that name no backend run: local or slurm
      backends: [local, slurm]    # the backends this server offers (default: just that one)
      jobUidRange: "200000-265535"  # each running job gets a uid (and gid) of its own
      jobUids: {alice: 1001}      # owners that run as a fixed user instead (name or uid)
      jobOwnerAccounts: false     # true: an owner with a local account runs as it
      cgroupRoot: jobyard         # cgroup directory name under each hierarchy
      defaultMaxPids: 1024
      maxOutputBytes: 1073741824  # per job; a job writing more is stopped; 0 = unlimited
      defaultMaxDisk: 0           # MB per job for /work and output (--max-disk); 0 = unlimited
      logFollowerStallTimeout: "30s"  # a log follower accepting nothing this long is cut off
      diskReserveBytes: 16777216  # data disk space kept for the server's records
      maxTotalCpu: 0              # percent; running jobs' maxCPU may not add up beyond; 0 = any
      maxTotalMemory: 0           # MB; the same for maxMemory; 0 = any
      maxWorkflowBytes: 1048576   # a bigger workflow document is refused
      maxWorkflowJobs: 5000       # a workflow with more jobs is refused
      secretKeyFile: /etc/jobyard/key  # 0600, seals secrets at rest (default DATA/server.key)
    ucloud:                       # products, applications, accounting: see jobyard.ucloud.catalog
      providerId: example
      products: [...]             # Product.Compute, as the seed's resolvedProduct
      applications: [...]         # Application (metadata + invocation), as resolvedApplication
      accountingIntervalSeconds: 60
    slurm:                        # the slurm backend (jobyard server --backend slurm)
      partition: debug            # sbatch --partition ("" = the cluster's default)
      account: ""                 # sbatch --account
      qos: ""                     # sbatch --qos
      sharedDir: /shared/jobyard  # on every node: jobs' output, work and state dirs
      python: /usr/bin/python3    # jobyard's interpreter on the nodes (default: the server's)
      toolsDir: /usr/bin          # where sbatch, squeue, scontrol, scancel are
      defaultTimeLimit: "24h"     # --time of jobs that ask for none (Slurm always gets one)
      maxJobs: 1000               # jobs handed to Slurm at once (queued or running)
      maxMemory: 0                # MB one job may ask for (0 = not checked here)
      maxCpus: 0                  # CPUs one job may ask for (0 = not checked here)
    http:
      listen: "127.0.0.1:8443"    # the HTTPS face (UCloud Jobs API); absent = not served
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.workflows import DEFAULT_MAX_WORKFLOW_BYTES, DEFAULT_MAX_WORKFLOW_JOBS

if TYPE_CHECKING:
    from jobyard.ucloud.catalog import UcloudConfig

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``"90s"``, ``"30m"``, ``"2h"``, ``"100ms"`` or a bare number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidArgument(f"invalid duration {value!r}: use e.g. 90s, 30m, 2h, 100ms")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgument(f"invalid duration {value!r}: must be a finite, positive number")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"`` (the inverse of :func:`parse_duration`, whole seconds)."""
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclasses.dataclass(frozen=True, slots=True)
class JobletConfig:
    default_cpu_limit: int = 100
    default_memory_limit: int = 512
    default_io_limit: int = 0
    max_concurrent_jobs: int = 100
    job_timeout_seconds: float = 0.0  # 0 = no default time limit
    cleanup_timeout_seconds: float = 0.1


@dataclasses.dataclass(frozen=True, slots=True)
class GrpcConfig:
    max_recv_msg_size: int = 524288
    max_send_msg_size: int = 4194304
    keep_alive_time_seconds: float = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class SlurmConfig:
    """The slurm backend: where and how jobs are handed to a Slurm cluster."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    shared_dir: Path | None = None  # None: the server's data directory (one-node clusters)
    python: str = ""  # "" = the server's own interpreter
    tools_dir: str = ""  # "" = found on PATH
    default_time_limit_seconds: float = 86400.0
    max_jobs: int = 1000
    max_memory: int = 0
    max_cpus: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class JobyardConfig:
    backend: str = "local"
    backends: tuple[str, ...] = ()  # () = just ``backend``
    job_uid_range: str = "200000-265535"  # "" = none: every owner needs a fixed uid
    job_uids: dict[str, str | int] = dataclasses.field(default_factory=dict)
    job_owner_accounts: bool = False
    cgroup_root: str = "jobyard"
    default_max_pids: int = 1024
    max_output_bytes: int = 1 << 30  # per job; 0 = unlimited
    default_max_disk: int = 0  # MB for a job that asks for no --max-disk; 0 = unlimited
    log_follower_stall_timeout_seconds: float = 30.0  # 0 = never cut off
    disk_reserve_bytes: int = 16 << 20  # released when job output fills the disk
    max_total_cpu: int = 0  # percent of one core, summed over active jobs; 0 = unbounded
    max_total_memory: int = 0  # MB, summed over active jobs; 0 = unbounded
    max_workflow_bytes: int = DEFAULT_MAX_WORKFLOW_BYTES
    max_workflow_jobs: int = DEFAULT_MAX_WORKFLOW_JOBS
    max_upload_bytes: int = 64 << 20  # a job's (or workflow's) uploads together; 0 = any
    secret_key_file: Path | None = None  # None: DATA/server.key, created on the first start
    max_volume_bytes: int = 10 << 30  # the largest volume one may create


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    data_dir: Path
    listen: str = "127.0.0.1:50051"
    certs_dir: Path | None = None
    insecure_dev: bool = False
    joblet: JobletConfig = JobletConfig()
    grpc: GrpcConfig = GrpcConfig()
    jobyard: JobyardConfig = JobyardConfig()
    ucloud: UcloudConfig | None = None  # no products, applications or charging without it
    slurm: SlurmConfig = SlurmConfig()
    http_listen: str = ""  # HOST:PORT of the HTTPS face; "" = not served


def _replaced_job_user(value: Any) -> None:
    raise InvalidArgument(
        "jobUser/jobGroup are replaced: every job now runs as a uid of its own from "
        "jobUidRange (default 200000-265535); to run an owner as a fixed user, use "
        "jobUids: {owner: user}"
    )


def _owner_uids(value: Any) -> dict[str, str | int]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument("must map owner names to a user name or uid")
    bad = [k for k, v in value.items() if isinstance(v, bool) or not isinstance(v, str | int)]
    if bad:
        raise InvalidArgument(f"owner {bad[0]!r}: give a user name or uid")
    return dict(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument("must be true or false")
    return value


_JOBLET_KEYS = {
    "defaultCpuLimit": ("default_cpu_limit", int),
    "defaultMemoryLimit": ("default_memory_limit", int),
    "defaultIoLimit": ("default_io_limit", int),
    "maxConcurrentJobs": ("max_concurrent_jobs", int),
    "jobTimeout": ("job_timeout_seconds", parse_duration),
    "cleanupTimeout": ("cleanup_timeout_seconds", parse_duration),
}
_GRPC_KEYS = {
    "maxRecvMsgSize": ("max_recv_msg_size", int),
    "maxSendMsgSize": ("max_send_msg_size", int),
    "keepAliveTime": ("keep_alive_time_seconds", parse_duration),
}


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("expected a list of names, e.g. [local, slurm]")
    return tuple(value)


_JOBYARD_KEYS = {
    "backend": ("backend", str),
    "backends": ("backends", _names),
    "jobUser": ("job_user", _replaced_job_user),
    "jobGroup": ("job_group", _replaced_job_user),
    "jobUidRange": ("job_uid_range", str),
    "jobUids": ("job_uids", _owner_uids),
    "jobOwnerAccounts": ("job_owner_accounts", _flag),
    "cgroupRoot": ("cgroup_root", str),
    "defaultMaxPids": ("default_max_pids", int),
    "maxOutputBytes": ("max_output_bytes", int),
    "defaultMaxDisk": ("default_max_disk", int),
    "logFollowerStallTimeout": ("log_follower_stall_timeout_seconds", parse_duration),
    "diskReserveBytes": ("disk_reserve_bytes", int),
    "maxTotalCpu": ("max_total_cpu", int),
    "maxTotalMemory": ("max_total_memory", int),
    "maxWorkflowBytes": ("max_workflow_bytes", int),
    "maxWorkflowJobs": ("max_workflow_jobs", int),
    "maxUploadBytes": ("max_upload_bytes", int),
    "secretKeyFile": ("secret_key_file", Path),
    "maxVolumeBytes": ("max_volume_bytes", int),
}
_SLURM_KEYS = {
    "partition": ("partition", str),
    "account": ("account", str),
    "qos": ("qos", str),
    "sharedDir": ("shared_dir", Path),
    "python": ("python", str),
    "toolsDir": ("tools_dir", str),
    "defaultTimeLimit": ("default_time_limit_seconds", parse_duration),
    "maxJobs": ("max_jobs", int),
    "maxMemory": ("max_memory", int),
    "maxCpus": ("max_cpus", int),
}
BACKENDS = ("local", "slurm")


def _section(raw: Any, name: str, keys: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidArgument(f"config: section {name!r} must be a mapping")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in keys:
            known = ", ".join(sorted(keys))
            raise InvalidArgument(f"config: unknown key {name}.{key} (known: {known})")
        field, convert = keys[key]
        try:
            out[field] = convert(value)
        except (TypeError, ValueError, InvalidArgument) as exc:
            raise InvalidArgument(f"config: {name}.{key}: {exc}") from exc
        if isinstance(out[field], int | float) and out[field] < 0:
            raise InvalidArgument(f"config: {name}.{key} must not be negative")
    return out


def load_config(path: Path | None, **overrides: Any) -> ServerConfig:
    """Read a YAML config file (if given) and apply command-line ``overrides``."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidArgument(f"config: cannot read {path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidArgument(f"config: {path} must hold a mapping")
        raw = loaded or {}
    unknown = set(raw) - {"joblet", "grpc", "jobyard", "ucloud", "slurm", "http"}
    if unknown:
        raise InvalidArgument(f"config: unknown section(s) {', '.join(sorted(unknown))}")
    joblet = JobletConfig(**_section(raw.get("joblet"), "joblet", _JOBLET_KEYS))
    grpc = GrpcConfig(**_section(raw.get("grpc"), "grpc", _GRPC_KEYS))
    jobyard = JobyardConfig(**_section(raw.get("jobyard"), "jobyard", _JOBYARD_KEYS))
    slurm = SlurmConfig(**_section(raw.get("slurm"), "slurm", _SLURM_KEYS))
    for key, value in (
        ("joblet.maxConcurrentJobs", joblet.max_concurrent_jobs),
        ("jobyard.maxWorkflowBytes", jobyard.max_workflow_bytes),
        ("jobyard.maxWorkflowJobs", jobyard.max_workflow_jobs),
    ):
        if value < 1:
            raise InvalidArgument(f"config: {key} must be at least 1")
    values = {k: v for k, v in overrides.items() if v is not None}
    http = _section(raw.get("http"), "http", {"listen": ("http_listen", str)})
    values.setdefault("http_listen", http.get("http_listen", ""))
    if "data_dir" not in values:
        raise InvalidArgument("config: a data directory is required")
    backend = values.pop("backend", None)
    if backend is not None:  # --backend: the default, offered even if not listed
        jobyard = dataclasses.replace(jobyard, backend=backend)
    _check_backends(jobyard)
    return ServerConfig(
        joblet=joblet,
        grpc=grpc,
        jobyard=jobyard,
        ucloud=_ucloud(raw.get("ucloud")),
        slurm=slurm,
        **values,
    )


def backend_names(config: JobyardConfig) -> tuple[str, ...]:
    """The backends a server offers: the default first, then the others listed."""
    return tuple(dict.fromkeys((config.backend, *config.backends)))


def _check_backends(config: JobyardConfig) -> None:
    for name in backend_names(config):
        if name not in BACKENDS:
            raise InvalidArgument(
                f"config: unknown backend {name!r} (known: {', '.join(BACKENDS)})"
            )


def _ucloud(raw: Any) -> UcloudConfig | None:
    if raw is None:
        return None
    # Imported here: pydantic and the UCloud models are the server's, not the client's.
    from jobyard.ucloud.catalog import parse_ucloud_config

    return parse_ucloud_config(raw)
