"""`jobyard run --workflow`, `status --workflow`, `list --workflow`, `stop --workflow`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import root_problem
from tests.e2e.daemon import Daemon

pytestmark = pytest.mark.skipif(root_problem() is not None, reason=root_problem() or "")

PIPELINE = """
jobs:
  setup-data:
    command: "sh"
    args: ["-c", "echo setup"]
  process-data:
    command: "sh"
    args: ["-c", "echo process"]
    requires:
      - setup-data: "COMPLETED"
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("wf"))
    d.start()
    yield d
    d.stop()


def _run_workflow(daemon: Daemon, text: str) -> str:
    path = daemon.root / f"wf-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    result = daemon.run("run", f"--workflow={path}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Workflow started:\nID: ")
    return result.stdout.splitlines()[1].removeprefix("ID: ")


def _wait(daemon: Daemon, wf: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        data = json.loads(daemon.run("status", "--workflow", "--json", wf, check=True).stdout)
        if data["workflow"]["status"] != "RUNNING":
            return dict(data)
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_workflow_runs_and_shows_the_seeds_table(daemon: Daemon) -> None:
    wf = _run_workflow(daemon, PIPELINE)
    assert _wait(daemon, wf)["workflow"]["status"] == "COMPLETED"  # type: ignore[index]
    table = daemon.run("status", "--workflow", wf[:8], check=True).stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("JOB ID"))
    assert table[header].split() == ["JOB", "ID", "JOB", "NAME", "STATUS", "EXIT", "CODE",
                                     "DEPENDENCIES"]  # fmt: skip
    rows = [line.split() for line in table[header + 2 :]]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("setup-data", "COMPLETED", "0"),
        ("process-data", "COMPLETED", "0"),
    ]
    assert rows[1][4] == "setup-data"
    listed = daemon.run("list", "--workflow", check=True).stdout
    assert wf in listed


def test_an_invalid_workflow_is_refused_with_its_reason(daemon: Daemon) -> None:
    path = daemon.root / "cycle.yaml"
    path.write_text("jobs: {a: {command: x, requires: [b: COMPLETED]}, "
                    "b: {command: y, requires: [a: COMPLETED]}}")  # fmt: skip
    result = daemon.run("run", "--workflow", str(path))
    assert result.returncode == 1
    assert "cycle: a -> b -> a" in result.stderr


def test_stopping_a_workflow_stops_running_jobs_and_cancels_the_rest(daemon: Daemon) -> None:
    wf = _run_workflow(daemon, """
jobs:
  long: {command: sleep, args: ["60"]}
  later: {command: "true", requires: [long: COMPLETED]}
""")  # fmt: skip
    deadline = time.monotonic() + 10
    while "RUNNING" not in daemon.run("status", "--workflow", wf).stdout.split("JOB ID")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stopped = daemon.run("stop", "--workflow", wf)
    assert stopped.returncode == 0, stopped.stderr
    data = _wait(daemon, wf)
    assert data["workflow"]["status"] == "STOPPED"  # type: ignore[index]
    statuses = {j["name"]: j["status"] for j in data["jobs"]}  # type: ignore[attr-defined]
    assert statuses == {"long": "STOPPED", "later": "STOPPED"}


def test_run_needs_a_command_or_a_workflow(daemon: Daemon) -> None:
    result = daemon.run("run")
    assert result.returncode == 2
    assert "missing COMMAND" in result.stderr
    both = daemon.run("run", "--workflow", str(Path("x.yaml")), "echo")
    assert both.returncode == 2
