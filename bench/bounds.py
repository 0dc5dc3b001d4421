"""Bad input against a real server: how long another client waits meanwhile.

A second client calls ListJobs in a loop while the first sends (a) nothing (the floor),
(b) alias bombs one after another (issue 9: one froze every client for 30 s), (c) one valid
workflow of the largest allowed size (5,000 jobs, parsed in a child process), (d) a 1.1 MB
workflow and a 100 KB job name (both refused). Prints the other client's p50/p99/max latency
in each phase next to the floor, and each bad request's answer and time. Not a test: it
prints, it does not assert.

    sudo .venv/bin/python bench/bounds.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _server import BenchServer, bench_server
from spawn import pct

from jobyard.domain.errors import JobyardError
from tests.unit.test_workflow_bounds import alias_bomb, many_jobs

ROOT_AND_DEPENDENTS = "jobs:\n  root: {command: sleep, args: ['3600']}\n"


def big_workflow(jobs: int) -> str:
    """``jobs`` jobs that wait on a root that never ends: parsed and stored, not run."""
    deps = "".join(f"  j{i}: {{command: 'true', requires: [root]}}\n" for i in range(jobs - 1))
    return ROOT_AND_DEPENDENTS + deps


def other_client_latency(server: BenchServer, during: Callable[[], None]) -> list[float]:
    """ListJobs latencies of a second client for as long as ``during`` runs."""
    done = threading.Event()
    latencies: list[float] = []

    def watch() -> None:
        with server.new_client() as other:
            while not done.is_set():
                started = time.perf_counter()
                other.jobs(limit=1)
                latencies.append(time.perf_counter() - started)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        during()
    finally:
        done.set()
        watcher.join()
    return latencies


def timed(label: str, call: Callable[[], object]) -> None:
    started = time.perf_counter()
    try:
        call()
        outcome = "accepted"
    except JobyardError as exc:
        outcome = f"{type(exc).__name__}: {str(exc)[:90]}"
    print(f"  {label}: {(time.perf_counter() - started) * 1000:.0f} ms, {outcome}")


def report(phase: str, latencies: list[float], floor: list[float]) -> None:
    p50, p99, worst = pct(latencies, 0.5), pct(latencies, 0.99), max(latencies) * 1000
    ratio = p99 / max(pct(floor, 0.99), 1e-6)
    print(f"{phase:<28} n={len(latencies):>5}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms "
          f"(x{ratio:.1f} floor)  max {worst:6.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the floor phase")
    parser.add_argument("--bombs", type=int, default=20)
    args = parser.parse_args()
    with bench_server() as server:
        client = server.client
        floor = other_client_latency(server, lambda: time.sleep(args.seconds))
        report("floor (idle)", floor, floor)

        def bombs() -> None:
            for i in range(args.bombs):
                timed(f"alias bomb {i + 1}", lambda: client.run_workflow(alias_bomb()))

        report("during alias bombs", other_client_latency(server, bombs), floor)

        def big() -> None:
            timed("5,000-job workflow", lambda: client.run_workflow(big_workflow(5000)))

        report("during a 5,000-job workflow", other_client_latency(server, big), floor)

        def refused() -> None:
            oversize = many_jobs(1) + "# padding\n" * 110_000
            timed("1.1 MB workflow", lambda: client.run_workflow(oversize))
            timed("100 KB job name", lambda: client.submit("true", name="x" * 100_000))

        report("during refusals", other_client_latency(server, refused), floor)


if __name__ == "__main__":
    main()
