"""Job, JobSpec and Resources: the native model every API face maps onto."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.status import Status, TerminationReason

DEFAULT_MAX_CPU_PERCENT = 100
DEFAULT_MAX_MEMORY_MB = 512
DEFAULT_MAX_IOBPS = 0
DEFAULT_MAX_PIDS = 1024

MAX_COMMAND_BYTES = 4096
MAX_ARGS = 4096
MAX_ARGV_BYTES = 256 * 1024
MAX_ENV_VARS = 512
MAX_ENV_BYTES = 256 * 1024
MAX_NAME_CHARS = 128
# Sanity bounds; the engine checks the host's real capacity on top of these.
MAX_CPU_PERCENT_BOUND = 100 * 4096
MAX_MEMORY_MB_BOUND = 64 * 1024 * 1024
MAX_PIDS_BOUND = 4 * 1024 * 1024
MAX_DISK_MB_BOUND = 16 * 1024 * 1024  # 16 TB

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CPUSET = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
RESOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_VOLUMES = 16
_BACKEND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,62}")
SECRET_MASK = "********"
NETWORK_HOST, NETWORK_NONE, NETWORK_ISOLATED = "host", "none", "isolated"
NETWORKS = (NETWORK_HOST, NETWORK_NONE, NETWORK_ISOLATED)  # or a created network's name
MAX_TIME_LIMIT_SECONDS = 366 * 86400
MAX_REPLICAS = 256
MAX_LABELS = 64
MAX_LABEL_VALUE_CHARS = 256
# The id a job was created under on another system (UCloud/Core's job id on the provider
# face): its ranks read it in job_id.txt, and it names the job on every face.
RANK_JOB_ID_LABEL = "ucloud.jobId"


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(ts: datetime | None) -> str:
    """RFC 3339 in UTC with a Z suffix, or "" for no time (the seed's wire form)."""
    if ts is None:
        return ""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclasses.dataclass(frozen=True, slots=True)
class Resources:
    """Limits applied to every process of a job. ``0`` means unlimited where noted."""

    max_cpu: int = DEFAULT_MAX_CPU_PERCENT  # percent of one core; 0 = unlimited
    cpu_cores: str = ""  # cpuset list such as "0-1"; "" = any
    max_memory: int = DEFAULT_MAX_MEMORY_MB  # MB; 0 = unlimited
    max_iobps: int = DEFAULT_MAX_IOBPS  # bytes/s; 0 = unlimited
    max_pids: int = DEFAULT_MAX_PIDS  # 0 = unlimited
    max_disk: int = 0  # MB the job may write to /work and its output together; 0 = unlimited

    def validate(self) -> None:
        _bounded("maxCPU", self.max_cpu, MAX_CPU_PERCENT_BOUND, "percent")
        _bounded("maxMemory", self.max_memory, MAX_MEMORY_MB_BOUND, "MB")
        _bounded("maxIOBPS", self.max_iobps, 2**31 - 1, "bytes/s")
        _bounded("maxPids", self.max_pids, MAX_PIDS_BOUND, "processes")
        _bounded("maxDisk", self.max_disk, MAX_DISK_MB_BOUND, "MB")
        if self.cpu_cores and not _CPUSET.fullmatch(self.cpu_cores):
            raise InvalidArgument(
                f"invalid cpuCores {self.cpu_cores!r}: expected a list such as 0-1 or 0,2"
            )
        for first, last in cpu_ranges(self.cpu_cores):
            if first > last:
                raise InvalidArgument(
                    f"invalid cpuCores {self.cpu_cores!r}: range {first}-{last} is reversed"
                )

    @property
    def highest_cpu(self) -> int:
        """The highest CPU number in ``cpu_cores`` (-1 when none is given)."""
        return max((last for _, last in cpu_ranges(self.cpu_cores)), default=-1)


def cpu_ranges(cpu_cores: str) -> list[tuple[int, int]]:
    """``"0-2,5"`` -> ``[(0, 2), (5, 5)]`` (input already checked against the pattern)."""
    out = []
    for part in filter(None, cpu_cores.split(",")):
        first, _, last = part.partition("-")
        out.append((int(first), int(last or first)))
    return out


def _bounded(name: str, value: int, upper: int, unit: str) -> None:
    if value < 0:
        raise InvalidArgument(f"invalid {name}: {value} (must not be negative)")
    if value > upper:
        raise InvalidArgument(f"invalid {name}: {value} {unit} exceeds the maximum of {upper}")


_PRODUCT_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclasses.dataclass(frozen=True, slots=True)
class ProductRef:
    """The machine type a job runs on (UCloud's ProductReference): its product ``id`` (the
    product's name), ``category`` and ``provider``. Its price and limits are the catalog's."""

    id: str
    category: str
    provider: str = ""

    def validate(self) -> None:
        for what, value in (("id", self.id), ("category", self.category)):
            if not _PRODUCT_PART.fullmatch(value):
                raise InvalidArgument(
                    f"invalid product {what} {value!r}: use letters, digits and . _ : - "
                    "(at most 128 characters)"
                )
        if self.provider and not _PRODUCT_PART.fullmatch(self.provider):
            raise InvalidArgument(f"invalid product provider {self.provider!r}")

    def __str__(self) -> str:
        return f"{self.id} ({self.category})"


@dataclasses.dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user asked to run. :meth:`validate` refuses anything unsafe or absurd."""

    command: str
    args: tuple[str, ...] = ()
    name: str = ""
    resources: Resources = Resources()
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    secret_environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    network: str = NETWORK_HOST  # "host" (the seed's default), "none", "isolated" or a name
    time_limit_seconds: float = 0.0  # wall time from start; 0 = none
    schedule: datetime | None = None  # do not start before this time
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    replicas: int = 1
    product: ProductRef | None = None  # charged per its price; None = not charged
    volumes: tuple[str, ...] = ()  # volume names, mounted at /volumes/NAME
    runtime_env: str = ""  # a runtime name (RuntimeService): its tree, bin/ first on PATH
    uploads: tuple[str, ...] = ()  # paths placed in the work directory before the start
    backend: str = ""  # where it runs ("local", "slurm"); "" = the server's default

    def validate(self) -> None:
        if not self.command or not self.command.strip():
            raise InvalidArgument("invalid command: command is required")
        _no_nul("command", self.command)
        if len(self.command.encode()) > MAX_COMMAND_BYTES:
            raise InvalidArgument(f"invalid command: longer than {MAX_COMMAND_BYTES} bytes")
        if len(self.args) > MAX_ARGS:
            raise InvalidArgument(f"invalid args: more than {MAX_ARGS} arguments")
        for i, arg in enumerate(self.args):
            _no_nul(f"args[{i}]", arg)
        argv_bytes = sum(len(a.encode()) + 1 for a in (self.command, *self.args))
        if argv_bytes > MAX_ARGV_BYTES:
            raise InvalidArgument(
                f"invalid args: {argv_bytes} bytes in total exceeds {MAX_ARGV_BYTES}"
            )
        if self.name and (len(self.name) > MAX_NAME_CHARS or not _NAME.fullmatch(self.name)):
            raise InvalidArgument(
                f"invalid name {self.name!r}: use letters, digits and . _ : - "
                f"(at most {MAX_NAME_CHARS} characters)"
            )
        if self.network not in NETWORKS and not RESOURCE_NAME.fullmatch(self.network):
            raise InvalidArgument(
                f"invalid network {self.network!r}: use one of {', '.join(NETWORKS)} or the "
                "name of a created network"
            )
        if not 0 <= self.time_limit_seconds <= MAX_TIME_LIMIT_SECONDS:
            raise InvalidArgument(
                f"invalid time limit {self.time_limit_seconds:g}s: must be between 0 and "
                f"{MAX_TIME_LIMIT_SECONDS}s"
            )
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise InvalidArgument(
                f"invalid replicas {self.replicas}: must be between 1 and {MAX_REPLICAS}"
            )
        if self.backend and not _BACKEND.fullmatch(self.backend):
            raise InvalidArgument(
                f"invalid backend {self.backend!r}: use a name such as local or slurm"
            )
        _validate_labels(self.labels)
        if self.product is not None:
            self.product.validate()
        _validate_names("volume", self.volumes, MAX_VOLUMES)
        if self.runtime_env:
            _validate_names("runtime", (self.runtime_env,), 1)
        _validate_env("environment", self.environment)
        _validate_env("secret_environment", self.secret_environment)
        both = set(self.environment) & set(self.secret_environment)
        if both:
            raise InvalidArgument(
                f"environment and secret_environment both set: {', '.join(sorted(both))}"
            )
        self.resources.validate()

    def check_rank(self, rank: int) -> None:
        """Refuse a rank this job does not have (ranks are 0..replicas-1)."""
        if not 0 <= rank < self.replicas:
            ranks = "rank 0" if self.replicas == 1 else f"ranks 0-{self.replicas - 1}"
            raise InvalidArgument(
                f"invalid rank {rank}: the job has {self.replicas} "
                f"replica{'s' if self.replicas != 1 else ''} ({ranks})"
            )


def _validate_labels(labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"invalid labels: more than {MAX_LABELS}")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                f"invalid label key {key!r}: letters, digits and . _ / - (at most 63)"
            )
        if len(value) > MAX_LABEL_VALUE_CHARS or "\x00" in value:
            raise InvalidArgument(f"invalid label {key}: value too long or contains NUL")


def _validate_names(what: str, names: Sequence[str], most: int) -> None:
    """Volume and runtime names: they become path components, so no separators or dots."""
    if len(names) > most:
        raise InvalidArgument(f"invalid {what}s: more than {most}")
    if len(set(names)) != len(names):
        raise InvalidArgument(f"invalid {what}s: a {what} is named twice")
    for name in names:
        if not RESOURCE_NAME.fullmatch(name):
            raise InvalidArgument(
                f"invalid {what} name {name!r}: letters, digits, '.', '_' and '-', "
                "starting with a letter or digit (at most 64)"
            )


def _no_nul(what: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidArgument(f"invalid {what}: contains a NUL byte")


def _validate_env(what: str, env: Mapping[str, str]) -> None:
    if len(env) > MAX_ENV_VARS:
        raise InvalidArgument(f"invalid {what}: more than {MAX_ENV_VARS} variables")
    total = 0
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise InvalidArgument(
                f"invalid {what}: bad variable name {key!r} (letters, digits and _, "
                "not starting with a digit)"
            )
        # Never echo the value: it may be a secret.
        if "\x00" in value:
            raise InvalidArgument(f"invalid {what}: value of {key} contains a NUL byte")
        total += len(key) + len(value.encode()) + 2
    if total > MAX_ENV_BYTES:
        raise InvalidArgument(f"invalid {what}: {total} bytes exceeds {MAX_ENV_BYTES}")


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Resource usage of a job: live while it runs, final once it ended."""

    cpu_seconds: float = 0.0
    memory_peak_bytes: int = 0
    memory_current_bytes: int = 0
    io_bytes: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One entry of a job's history (UCloud ``updates``)."""

    timestamp: datetime
    status: Status
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """The stored job record. Immutable: the store returns a new one after each change."""

    id: str
    owner: str
    spec: JobSpec
    status: Status
    created_at: datetime
    backend: str = "local"  # the backend that runs it (a key of the engine's registry)
    reason: TerminationReason | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    backend_id: str = ""
    message: str = ""
    updates: tuple[StatusUpdate, ...] = ()
    expires_at: datetime | None = None  # started_at + time limit + extensions
    usage: Usage | None = None  # recorded when the job ends
    suspended_seconds: float = 0.0  # total time spent SUSPENDED (closed periods)
    suspended_at: datetime | None = None  # start of the current SUSPENDED period
    workflow_id: str = ""
    project: str = ""  # the submitter's project ("" = none): its members see the job
    # Who else sees it, as its project's members do: "user:NAME" / "project:NAME"
    # (domain.access.principal; UCloud/Core's ACL on the provider face).
    shared_with: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def command_line(self) -> str:
        return " ".join((self.spec.command, *self.spec.args))

    def suspended_seconds_at(self, now: datetime) -> float:
        """Time spent SUSPENDED up to ``now``, the period still open included."""
        if self.suspended_at is None:
            return self.suspended_seconds
        return self.suspended_seconds + max(0.0, (now - self.suspended_at).total_seconds())


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    """Whether ``value`` is a job id as :func:`new_job_id` makes them (a UUID, lower case)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def looks_like_id_prefix(value: str) -> bool:
    return bool(value) and len(value) <= 36 and all(c in "0123456789abcdef-" for c in value)


def parse_key_values(items: Sequence[str], what: str) -> dict[str, str]:
    """Parse ``K=V`` items as given on a command line."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"invalid {what} {key!r}: expected KEY=VALUE")
        out[key] = value
    return out
