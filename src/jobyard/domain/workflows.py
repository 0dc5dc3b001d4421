"""Workflows: YAML-defined jobs with ``requires`` clauses (the seed's Workflow API).

::

    jobs:
      setup-data:
        command: python3
        args: [setup.py]
      process-data:
        command: python3
        args: [process.py]
        requires:
          - setup-data: COMPLETED

A job starts once every requirement holds (ANDed). A requirement that can no longer hold
(its dependency ended in another status) ends the job, and its dependents, as STOPPED with
reason DEPENDENCY_FAILED. Everything is validated before anything runs.

Bounds (:class:`WorkflowLimits`): the document's size, its number of jobs, and the size it
would have with every alias expanded. The last is counted on the composed node graph, before
anything is constructed: a 1 KB document of nested anchors ("billion laughs") is refused in
microseconds instead of being materialised.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import yaml

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec, Resources
from jobyard.domain.status import TERMINAL, Status

DEFAULT_MAX_WORKFLOW_JOBS = 5_000
DEFAULT_MAX_WORKFLOW_BYTES = 1024 * 1024
# Expanded size (nodes + scalar characters, aliases expanded) allowed per byte of the limit:
# a document without aliases stays under 2 units per byte.
EXPANSION_UNITS_PER_BYTE = 4
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# YAML key -> Resources field; the seed's camelCase and snake_case both accepted.
_LIMIT_KEYS = {
    "maxCPU": "max_cpu", "max_cpu": "max_cpu",
    "maxMemory": "max_memory", "max_memory": "max_memory",
    "maxIOBPS": "max_iobps", "max_iobps": "max_iobps", "max_io_bps": "max_iobps",
    "maxPids": "max_pids", "max_pids": "max_pids",
    "maxDisk": "max_disk", "max_disk": "max_disk",
    "cpuCores": "cpu_cores", "cpu_cores": "cpu_cores",
}  # fmt: skip
_UNSET_LIMITS = Resources(
    max_cpu=0, cpu_cores="", max_memory=0, max_iobps=0, max_pids=0, max_disk=0
)
_JOB_KEYS = {
    "command", "args", "environment", "secret_environment", "resources", "requires",
    "timeLimit", "time_limit", "network", "labels", *_LIMIT_KEYS,
    # Joblet's own examples (50b8d0a)
    "description", "uploads", "volumes", "runtime",
}  # fmt: skip
_TOP_KEYS = {"jobs", "name", "version", "description"}


@dataclasses.dataclass(frozen=True, slots=True)
class Requirement:
    job: str  # name of the job depended on
    status: Status  # the terminal status it must end in


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowJobSpec:
    name: str
    spec: JobSpec
    requires: tuple[Requirement, ...] = ()

    @property
    def dependencies(self) -> tuple[str, ...]:
        return tuple(r.job for r in self.requires)


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowSpec:
    jobs: tuple[WorkflowJobSpec, ...]  # in a dependency order (dependencies first)

    @property
    def holds_secrets(self) -> bool:
        return any(job.spec.secret_environment for job in self.jobs)

    def job(self, name: str) -> WorkflowJobSpec:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)

    @property
    def by_name(self) -> dict[str, WorkflowJobSpec]:
        return {job.name: job for job in self.jobs}


class WorkflowStatus(enum.StrEnum):
    """A workflow's status: RUNNING until every job has an outcome."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # every job COMPLETED
    FAILED = "FAILED"  # some job ended otherwise (or never started)
    STOPPED = "STOPPED"  # stopped by a user

    @property
    def ended(self) -> bool:
        return self is not WorkflowStatus.RUNNING


# The status of a workflow job not created yet; once created, its job's status is shown, and
# a job that never starts (a requirement failed, the workflow was stopped) is STOPPED.
PENDING = "PENDING"


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowJobRow:
    """A workflow job's place: its job once created, else why it has none yet."""

    name: str
    position: int  # in dependency order
    job_id: str | None
    status: str  # PENDING, or STOPPED for a job that never started; else see the job
    reason: str | None
    dependencies: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A stored workflow: its document and the place of each of its jobs."""

    id: str
    name: str
    owner: str
    document: str
    status: WorkflowStatus
    created_at: datetime
    ended_at: datetime | None
    jobs: tuple[WorkflowJobRow, ...]
    project: str = ""  # the submitter's project ("" = none): its members see the workflow
    # Some job has secret_environment values: the document is never shown, and is erased
    # once the workflow ends (its jobs hold their own sealed copies until they end).
    holds_secrets: bool = False

    @property
    def shown_document(self) -> str:
        """The YAML as answers may carry it: "" when it holds secret values."""
        return "" if self.holds_secrets else self.document


@dataclasses.dataclass(frozen=True, slots=True)
class WorkflowLimits:
    """How big a workflow may be; anything bigger is refused with InvalidArgument."""

    max_bytes: int = DEFAULT_MAX_WORKFLOW_BYTES
    max_jobs: int = DEFAULT_MAX_WORKFLOW_JOBS

    @property
    def max_expanded(self) -> int:
        return EXPANSION_UNITS_PER_BYTE * self.max_bytes


# libyaml's parser where it is installed (several times faster); the constructor that runs
# after the checks is Python's SafeConstructor either way.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[misc]
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise InvalidArgument("invalid workflow: a mapping key must be a plain value")
        if key in seen:
            raise InvalidArgument(f"invalid workflow: duplicate name {key!r}")
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def check_size(text: str, limits: WorkflowLimits) -> None:
    """Refuse a document over the byte limit (cheap: before any parsing)."""
    size = len(text.encode())
    if size > limits.max_bytes:
        raise InvalidArgument(
            f"invalid workflow: {size} bytes exceeds the limit of {limits.max_bytes} bytes"
        )


def parse_workflow(
    text: str, parse_duration: Any = None, limits: WorkflowLimits = WorkflowLimits()
) -> WorkflowSpec:
    """Parse and fully validate a workflow; raises InvalidArgument naming the problem."""
    check_size(text, limits)
    doc = _load(text, limits)
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict) or not doc["jobs"]:
        raise InvalidArgument("invalid workflow: expected a non-empty 'jobs:' mapping")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise InvalidArgument(f"invalid workflow: unknown key(s) {_names(unknown)}")
    jobs = {
        str(name): _parse_job(str(name), body, parse_duration) for name, body in doc["jobs"].items()
    }
    for job in jobs.values():
        for req in job.requires:
            if req.job not in jobs:
                raise InvalidArgument(
                    f"invalid workflow: job {job.name!r} requires unknown job {req.job!r}"
                )
    return WorkflowSpec(jobs=tuple(jobs[name] for name in _dependency_order(jobs)))


def _load(text: str, limits: WorkflowLimits) -> Any:
    """The document's data, refused before construction if it would expand past the limits."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, limits.max_expanded)
        _check_job_count(node, limits.max_jobs)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"invalid workflow: not valid YAML: {exc}") from None
    except RecursionError:
        raise InvalidArgument("invalid workflow: nested too deeply") from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, limit: int) -> None:
    """Refuse a node graph whose alias-expanded size (every node 1, every scalar its length
    too) exceeds ``limit``, or that refers to itself. Each distinct node is visited once
    (sizes are memoised), without recursion, so the check is linear in the document."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the path from the root: seeing one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if isinstance(node, yaml.ScalarNode):
                sizes[key] += len(node.value)
            if sizes[key] > limit:
                raise InvalidArgument(
                    f"invalid workflow: its aliases expand past the limit of {limit} "
                    f"(nodes and characters)"
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise InvalidArgument("invalid workflow: an alias refers to a node containing it")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_job_count(root: yaml.Node, limit: int) -> None:
    if not isinstance(root, yaml.MappingNode):
        return  # refused with a clearer message once constructed
    for key, value in root.value:
        is_jobs = isinstance(key, yaml.ScalarNode) and key.value == "jobs"
        if is_jobs and isinstance(value, yaml.MappingNode) and len(value.value) > limit:
            raise InvalidArgument(
                f"invalid workflow: {len(value.value)} jobs exceeds the limit of {limit}"
            )


def _names(keys: set[Any]) -> str:
    return ", ".join(sorted(str(k) for k in keys))


def _parse_job(name: str, body: Any, parse_duration: Any) -> WorkflowJobSpec:
    if not _JOB_NAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid workflow: job name {name!r}: use letters, digits and . _ - (max 128)"
        )
    if not isinstance(body, dict):
        raise InvalidArgument(f"invalid workflow: job {name!r} must be a mapping")
    unknown = set(body) - _JOB_KEYS
    if unknown:
        raise InvalidArgument(
            f"invalid workflow: job {name!r} has unknown key(s) {_names(unknown)}"
        )
    try:
        spec = _job_spec(name, body, parse_duration)
        spec.validate()
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid workflow: job {name!r}: {exc}") from None
    return WorkflowJobSpec(name=name, spec=spec, requires=_requirements(name, body))


def _job_spec(name: str, body: Mapping[str, Any], parse_duration: Any) -> JobSpec:
    limits = dict(body.get("resources") or {})
    limits.update({k: v for k, v in body.items() if k in _LIMIT_KEYS})
    fields: dict[str, Any] = {}
    for key, value in limits.items():
        if key not in _LIMIT_KEYS:
            raise InvalidArgument(f"unknown resource {key!r}")
        field = _LIMIT_KEYS[key]
        fields[field] = str(value) if field == "cpu_cores" else _int(key, value)
    time_limit = body.get("timeLimit", body.get("time_limit", 0))
    seconds = parse_duration(time_limit) if parse_duration and time_limit else 0.0
    args = body.get("args") or []
    if not isinstance(args, list) or not all(_is_scalar(a) for a in args):
        raise InvalidArgument("args must be a list of strings")
    return JobSpec(
        command=str(body.get("command") or ""),
        args=tuple(str(a) for a in args),
        name=name,
        # 0 = "the server's default", filled in at submit like a RunJob's limits.
        resources=dataclasses.replace(_UNSET_LIMITS, **fields),
        environment=_str_map("environment", body.get("environment")),
        secret_environment=_str_map("secret_environment", body.get("secret_environment")),
        network=str(body.get("network") or "host"),
        time_limit_seconds=float(seconds),
        labels=_str_map("labels", body.get("labels")),
        volumes=tuple(_str_list("volumes", body.get("volumes"))),
        runtime_env=str(body.get("runtime") or ""),
        uploads=tuple(_upload_files(body.get("uploads"))),
    )


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{key} must be a whole number, not {value!r}")
    return value


def _str_list(what: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{what} must be a list of names")
    return list(value)


def _upload_files(value: Any) -> list[str]:
    """``uploads: {files: [paths relative to the YAML file]}`` (Joblet's form)."""
    if value is None:
        return []
    if not isinstance(value, dict) or set(value) - {"files"}:
        raise InvalidArgument("uploads must be a mapping with 'files: [paths]'")
    return _str_list("uploads.files", value.get("files"))


def _str_map(what: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(_is_scalar(v) for v in value.values()):
        raise InvalidArgument(f"{what} must be a mapping of names to strings")
    return {str(k): str(v) for k, v in value.items()}


def _is_scalar(value: Any) -> bool:
    # str() of a nested list repeats every alias it holds: only scalars become strings.
    return isinstance(value, str | int | float | bool | date) or value is None


def _requirements(name: str, body: Mapping[str, Any]) -> tuple[Requirement, ...]:
    raw = body.get("requires") or []
    if not isinstance(raw, list):
        raise InvalidArgument(f"invalid workflow: job {name!r}: requires must be a list")
    out = []
    for item in raw:
        pairs = item.items() if isinstance(item, dict) else [(item, "COMPLETED")]
        for dep, status in pairs:
            word = str(status).upper()
            if word not in {s.value for s in TERMINAL}:
                raise InvalidArgument(
                    f"invalid workflow: job {name!r} requires {dep!r} to be {status!r}: "
                    f"status must be one of COMPLETED, FAILED, STOPPED"
                )
            if str(dep) == name:
                raise InvalidArgument(f"invalid workflow: cycle: {name} -> {name}")
            out.append(Requirement(job=str(dep), status=Status(word)))
    return tuple(out)


def _dependency_order(jobs: Mapping[str, WorkflowJobSpec]) -> list[str]:
    """Topological order (stable: YAML order among ready jobs); a cycle is named."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise InvalidArgument(f"invalid workflow: cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in jobs[name].dependencies:
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for name in jobs:
        visit(name, [])
    return order
