"""Workflow scheduling: a fan-out/fan-in workflow of N jobs, and dependency start delays.

Prints the wall time of the whole workflow, the engine's scheduling overhead per job
(wall time over N, next to the raw launch floor of one isolated job measured in the same
run) and the delay from a dependency's end to its dependent's start (p50/p99) — the
number the workflow runner controls (it reacts to job events; no polling).

    sudo .venv/bin/python bench/workflows.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import running_server
from spawn import pct, raw_spawn


def fan_out_fan_in(jobs: int) -> str:
    middle = jobs - 2
    lines = ["jobs:", "  root: {command: 'true'}"]
    lines += [f"  m{i}: {{command: 'true', requires: [root: COMPLETED]}}" for i in range(middle)]
    needs = ", ".join(f"m{i}: COMPLETED" for i in range(middle))
    lines.append(f"  sink: {{command: 'true', requires: [{needs}]}}")
    return "\n".join(lines) + "\n"


def chain(jobs: int) -> str:
    lines = ["jobs:", "  j0: {command: 'true'}"]
    lines += [
        f"  j{i}: {{command: 'true', requires: [j{i - 1}: COMPLETED]}}" for i in range(1, jobs)
    ]
    return "\n".join(lines) + "\n"


def _time(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def run(client: object, document: str, label: str, jobs: int, floor_ms: float) -> None:
    started = time.perf_counter()
    status = client.run_workflow(document, name=label)  # type: ignore[attr-defined]
    while not status.workflow.done:
        time.sleep(0.2)
        status = client.workflow(status.workflow.id)  # type: ignore[attr-defined]
    wall = time.perf_counter() - started
    assert status.workflow.status == "COMPLETED", status.workflow
    by_name = {j.name: j for j in status.jobs}
    delays = []
    for job in status.jobs:
        if job.dependencies:
            last_dep_end = max(_time(by_name[d].end_time) for d in job.dependencies)
            delays.append((_time(job.start_time) - last_dep_end).total_seconds())
    last = delays[-1] * 1000  # the last job in dependency order: the chain's end or the sink
    print(f"{label:<22}{jobs:>6}{wall:>9.2f}{wall / jobs * 1000:>12.1f}{floor_ms:>12.1f}"
          f"{min(delays) * 1000:>9.1f}{pct(delays, 0.5):>10.1f}{pct(delays, 0.99):>10.1f}"
          f"{last:>10.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    opts = parser.parse_args()
    floor_ms = sorted(raw_spawn() for _ in range(20))[10] * 1000
    print(f"{'workflow':<22}{'jobs':>6}{'wall s':>9}{'ms/job':>12}{'raw floor ms':>12}"
          f"{'dep min':>9}{'dep p50':>10}{'dep p99':>10}{'dep last':>10}")  # fmt: skip
    print(
        "dep = dependency end -> dependent start, ms; in a fan-out the dependents also wait"
        " for their turn to launch, so min and last (the fan-in) show the runner's own delay"
    )
    config = "joblet:\n  maxConcurrentJobs: 1000\n"
    with running_server(config=config) as client:
        run(client, chain(50), "chain", 50, floor_ms)
        run(client, fan_out_fan_in(opts.jobs), "fan-out/fan-in", opts.jobs, floor_ms)


if __name__ == "__main__":
    main()
