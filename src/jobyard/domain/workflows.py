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
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import yaml

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec, Resources
from jobyard.domain.status import TERMINAL, Status

MAX_WORKFLOW_JOBS = 10_000
MAX_WORKFLOW_BYTES = 4 * 1024 * 1024
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# YAML key -> Resources field; the seed's camelCase and snake_case both accepted.
_LIMIT_KEYS = {
    "maxCPU": "max_cpu", "max_cpu": "max_cpu",
    "maxMemory": "max_memory", "max_memory": "max_memory",
    "maxIOBPS": "max_iobps", "max_iobps": "max_iobps", "max_io_bps": "max_iobps",
    "maxPids": "max_pids", "max_pids": "max_pids",
    "cpuCores": "cpu_cores", "cpu_cores": "cpu_cores",
}  # fmt: skip
_UNSET_LIMITS = Resources(max_cpu=0, cpu_cores="", max_memory=0, max_iobps=0, max_pids=0)
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

    def job(self, name: str) -> WorkflowJobSpec:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(name)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise InvalidArgument(f"invalid workflow: duplicate name {key!r}")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def parse_workflow(text: str, parse_duration: Any = None) -> WorkflowSpec:
    """Parse and fully validate a workflow; raises InvalidArgument naming the problem."""
    if len(text.encode()) > MAX_WORKFLOW_BYTES:
        raise InvalidArgument(f"invalid workflow: larger than {MAX_WORKFLOW_BYTES} bytes")
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"invalid workflow: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict) or not doc["jobs"]:
        raise InvalidArgument("invalid workflow: expected a non-empty 'jobs:' mapping")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise InvalidArgument(f"invalid workflow: unknown key(s) {', '.join(sorted(unknown))}")
    if len(doc["jobs"]) > MAX_WORKFLOW_JOBS:
        raise InvalidArgument(f"invalid workflow: more than {MAX_WORKFLOW_JOBS} jobs")
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
            f"invalid workflow: job {name!r} has unknown key(s) {', '.join(sorted(unknown))}"
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
    if not isinstance(args, list):
        raise InvalidArgument("args must be a list")
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
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


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
