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
