"""Workflow YAML parsing and validation (pure; no server)."""

from __future__ import annotations

import pytest

from jobyard.config import parse_duration
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.status import Status
from jobyard.domain.workflows import Requirement, parse_workflow

SEED = """
jobs:
  process-data:
    command: "python3"
    args: ["process.py"]
    maxMemory: 256
    environment: {MODE: fast}
    timeLimit: 2m
    requires:
      - setup-data: "COMPLETED"
  setup-data:
    command: "python3"
    args: ["setup.py"]
    resources: {max_cpu: 50}
"""


def test_the_seed_format_parses_in_dependency_order() -> None:
    wf = parse_workflow(SEED, parse_duration)
    assert [j.name for j in wf.jobs] == ["setup-data", "process-data"]
    process = wf.job("process-data")
    assert process.requires == (Requirement("setup-data", Status.COMPLETED),)
    assert process.spec.command == "python3" and process.spec.args == ("process.py",)
    assert process.spec.resources.max_memory == 256
    assert process.spec.resources.max_cpu == 0  # not given: the server's default applies
    assert process.spec.environment == {"MODE": "fast"}
    assert process.spec.time_limit_seconds == 120
    assert process.spec.name == "process-data"
    assert wf.job("setup-data").spec.resources.max_cpu == 50


def test_requirements_are_anded_and_may_name_failure() -> None:
    wf = parse_workflow(
        "jobs: {a: {command: x}, b: {command: y}, "
        "c: {command: z, requires: [a: COMPLETED, b: FAILED]}}"
    )
    assert wf.job("c").requires == (
        Requirement("a", Status.COMPLETED),
        Requirement("b", Status.FAILED),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: {a: {command: x, requires: [b: COMPLETED]}, "
         "b: {command: y, requires: [c: COMPLETED]}, c: {command: z, requires: [a: COMPLETED]}}",
         "cycle: a -> b -> c -> a"),
        ("jobs: {a: {command: x, requires: [a: COMPLETED]}}", "cycle: a -> a"),
        ("jobs: {a: {command: x, requires: [nope: COMPLETED]}}", "unknown job 'nope'"),
        ("jobs:\n  a: {command: x}\n  a: {command: y}\n", "duplicate name 'a'"),
        ("jobs: {a: {command: x}, b: {command: y, requires: [a: RUNNING]}}", "status must be"),
        ("jobs: {a: {command: x, maxCPU: -5}}", "maxCPU"),
        ("jobs: {a: {command: x, maxMemory: lots}}", "whole number"),
        ("jobs: {a: {command: x, colour: red}}", "unknown key(s) colour"),
        ("jobs: {'bad name!': {command: x}}", "job name"),
        ("jobs: {a: {command: ''}}", "command is required"),
        ("jobs: {}", "non-empty 'jobs:'"),
        ("steps: {a: {command: x}}", "jobs:"),
        ("jobs: [", "not valid YAML"),
        ("jobs: {a: {command: x, args: notalist}}", "args must be a list"),
    ],
)  # fmt: skip
def test_invalid_workflows_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_workflow(text, parse_duration)
    assert message in str(exc.value)


JOBLET_EXAMPLE = """
version: "3.0"
description: "an example in Joblet's own format"
jobs:
  train:
    description: "fit the model"
    command: python3
    args: [train.py]
    runtime: python-3.11-ml
    network: none
    volumes: [datasets, models]
    uploads:
      files: [train.py, config/params.json]
    resources: {max_cpu: 50, max_memory: 1024, max_io_bps: 1000, max_disk: 200}
"""


def test_jobs_in_joblets_example_format_are_accepted() -> None:
    spec = parse_workflow(JOBLET_EXAMPLE).job("train").spec
    assert spec.runtime_env == "python-3.11-ml" and spec.network == "none"
    assert spec.volumes == ("datasets", "models")
    assert spec.uploads == ("train.py", "config/params.json")
    limits = spec.resources
    assert (limits.max_cpu, limits.max_memory, limits.max_iobps) == (50, 1024, 1000)
    assert limits.max_disk == 200


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("{command: x, environment: {1ABC: v}}",
         "bad variable name '1ABC' (letters, digits and _, not starting with a digit)"),
        ("{command: x, environment: {A-B: v}}", "bad variable name 'A-B'"),
        ("{command: x, secret_environment: {'A B': v}}", "bad variable name 'A B'"),
        ("{command: x, environment: {TOKEN: a}, secret_environment: {TOKEN: b}}",
         "environment and secret_environment both set: TOKEN"),
        ("{command: x, volumes: [../etc]}", "invalid volume name '../etc'"),
        ("{command: x, volumes: [a, a]}", "a volume is named twice"),
        ("{command: x, runtime: a/b}", "invalid runtime name 'a/b'"),
        ("{command: x, uploads: [a.txt]}", "uploads must be a mapping with 'files: [paths]'"),
    ],
)  # fmt: skip
def test_joblets_job_rules_refuse_the_workflow(job: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_workflow(f"jobs: {{a: {job}}}")
    assert message in str(exc.value)
