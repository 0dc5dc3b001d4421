"""Workflow documents cannot exhaust the server: expansion, size and job-count bounds."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from jobyard.api.errors import public_message
from jobyard.config import parse_duration
from jobyard.domain.errors import MAX_MESSAGE_CHARS, InvalidArgument
from jobyard.domain.workflows import WorkflowLimits, parse_workflow
from jobyard.engine.parsing import ProcessWorkflowParser


def alias_bomb(depth: int = 9) -> str:
    """The 1 KB document of issue 9: each level 9 aliases of the one before (9**9 leaves)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, depth):
        refs = ",".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    lines.append(f"jobs:\n  boom: {{command: echo, args: *l{depth - 1}}}")
    return "\n".join(lines) + "\n"


def many_jobs(count: int) -> str:
    return "jobs:\n" + "".join(f"  j{i}: {{command: 'true'}}\n" for i in range(count))


def test_an_alias_bomb_is_refused_before_it_is_built() -> None:
    text = alias_bomb()
    assert len(text) < 1024
    with pytest.raises(InvalidArgument, match="aliases expand past the limit"):
        parse_workflow(text, parse_duration)


def test_an_alias_that_contains_itself_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="alias refers to a node containing it"):
        parse_workflow("jobs: &x\n  a: {command: x, args: [*x]}\n", parse_duration)


def test_aliases_within_the_bound_still_work() -> None:
    text = """
jobs:
  a: {command: x, environment: &env {A: "1", B: two}}
  b: {command: y, environment: *env, args: [&word hello, *word]}
"""
    wf = parse_workflow(text, parse_duration)
    assert wf.job("b").spec.environment == {"A": "1", "B": "two"}
    assert wf.job("b").spec.args == ("hello", "hello")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs: {a: {command: x, args: [[1, 2], 3]}}", "args must be a list of strings"),
        ("jobs: {a: {command: x, environment: {A: [1]}}}", "mapping of names to strings"),
        ("jobs: {a: {command: x, labels: {k: {n: 1}}}}", "mapping of names to strings"),
        ("jobs: {[a, b]: {command: x}}", "a mapping key must be a plain value"),
        ("jobs:\n  a: {command: x, args: " + "[" * 2000 + "]" * 2000 + "}\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_structures_where_strings_belong_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_workflow(text, parse_duration)


def test_a_workflow_over_the_byte_limit_is_refused_before_parsing() -> None:
    limits = WorkflowLimits(max_bytes=100)
    with pytest.raises(InvalidArgument, match="exceeds the limit of 100 bytes"):
        parse_workflow("jobs:\n  a: {command: x}\n" + "#" * 100, parse_duration, limits)


def test_a_workflow_over_the_job_limit_is_refused() -> None:
    assert len(parse_workflow(many_jobs(5), parse_duration, WorkflowLimits(max_jobs=5)).jobs) == 5
    with pytest.raises(InvalidArgument, match="6 jobs exceeds the limit of 5"):
        parse_workflow(many_jobs(6), parse_duration, WorkflowLimits(max_jobs=5))


def test_the_defaults_are_one_megabyte_and_five_thousand_jobs() -> None:
    assert (WorkflowLimits().max_bytes, WorkflowLimits().max_jobs) == (1 << 20, 5000)


async def test_the_process_parser_answers_as_the_inline_one() -> None:
    parser = ProcessWorkflowParser(WorkflowLimits(max_jobs=3))
    wf = await parser.parse("jobs:\n  a: {command: x}\n  b: {command: y, requires: [a]}\n")
    assert [j.name for j in wf.jobs] == ["a", "b"]
    with pytest.raises(InvalidArgument, match="aliases expand past the limit"):
        await parser.parse(alias_bomb())
    with pytest.raises(InvalidArgument, match="4 jobs exceeds the limit of 3"):
        await parser.parse(many_jobs(4))


async def test_the_process_parser_bounds_how_many_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobyard.domain.errors import ResourceExhausted
    from jobyard.engine import parsing

    monkeypatch.setattr(parsing, "MAX_PARSES_WAITING", 2)
    parser = ProcessWorkflowParser()
    first = [asyncio.create_task(parser.parse(many_jobs(1))) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted, match="too many workflows being parsed"):
        await parser.parse(many_jobs(1))
    assert [len(wf.jobs) for wf in await asyncio.gather(*first)] == [1, 1]


def test_a_long_message_keeps_its_start_and_end_and_drops_the_middle() -> None:
    name = "n" * 100_000
    message = public_message(InvalidArgument(f"invalid name {name!r}: use letters (at most 128)"))
    assert len(message) <= MAX_MESSAGE_CHARS + 40
    assert message.startswith("invalid name 'nnn")
    assert message.endswith(": use letters (at most 128)")
    assert "characters cut" in message
    assert public_message(InvalidArgument("short")) == "short"


def test_the_parsing_child_drops_root_before_reading_the_document() -> None:
    import os
    import subprocess
    import sys

    probe = (
        "import os, sys, jobyard.sandbox as s; real = s.parse_workflow\n"
        "s.parse_workflow = lambda *a: (print(os.getuid(), os.getgid(), file=sys.stderr),"
        " real(*a))[1]\n"
        "s.main(['1000', '10'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], input=b"jobs: {a: {command: x}}", capture_output=True
    )
    expected = "65534 65534" if os.geteuid() == 0 else f"{os.getuid()} {os.getgid()}"
    assert done.stderr.decode().split("\n")[0] == expected


async def test_the_log_of_a_job_with_a_huge_command_line_stays_short(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.unit.test_engine import ALICE, rig_for, spec

    caplog.set_level(logging.INFO, logger="jobyard.engine")
    async with rig_for(tmp_path) as rig:
        await rig.engine.submit(ALICE, spec(args=("a" * 100_000,)))
    started = [r.getMessage() for r in caplog.records if "job started" in r.getMessage()]
    assert len(started) == 1
    assert "a" * 201 not in started[0] and "characters cut" in started[0]


def test_a_child_that_died_refuses_its_document_only() -> None:
    with pytest.raises(InvalidArgument, match="could not be parsed within the parser's limits"):
        ProcessWorkflowParser._result(b"", -9)  # killed: no answer at all


def test_a_childs_answer_may_hold_only_the_workflow_domain() -> None:
    import os
    import pickle

    from jobyard.sandbox import loads

    with pytest.raises(pickle.UnpicklingError, match=r"refused: posix\.system"):
        loads(pickle.dumps(("ok", os.system)))
    with pytest.raises(InvalidArgument, match="could not be parsed"):
        ProcessWorkflowParser._result(pickle.dumps(("ok", os.system)), 0)
