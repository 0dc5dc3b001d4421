"""Submit-to-done latency and throughput of trivial jobs, next to a raw spawn floor.

The floor is what any isolated launch must pay on this host, measured in the same run:
cgroup creation with limits + `unshare` (pid, mount, ipc, uts) + `setpriv` to an
unprivileged user + `true`, then cgroup removal — no API, no store, no supervisor.

    sudo .venv/bin/python bench/spawn.py [--jobs 100] [--clients 1,8]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import running_server

CGROUP_V1 = Path("/sys/fs/cgroup")
NOBODY = "65534"


def raw_spawn() -> float:
    """One isolated `true` the shortest way: returns seconds taken."""
    name = f"jobyard-bench-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    dirs = []
    for controller, limit_file, value in (
        ("cpu", "cpu.cfs_quota_us", "100000"),
        ("memory", "memory.limit_in_bytes", str(512 << 20)),
        ("pids", "pids.max", "1024"),
    ):
        d = CGROUP_V1 / controller / name
        d.mkdir()
        (d / limit_file).write_text(value)
        dirs.append(d)
    join = "; ".join(f"echo 0 > {d}/cgroup.procs" for d in dirs)
    subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--ipc", "--uts", "--propagation", "private",
         "sh", "-c", f"{join}; exec setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups "
         "--no-new-privs true"],
        check=True,
    )  # fmt: skip
    for d in dirs:
        d.rmdir()
    return time.perf_counter() - started


def api_spawn(client: object) -> float:
    started = time.perf_counter()
    job = client.submit("true")  # type: ignore[attr-defined]
    done = client.wait(job.id, timeout=60)  # type: ignore[attr-defined]
    assert done.status == "COMPLETED", done
    return time.perf_counter() - started


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def measure(fn: object, jobs: int, clients: int) -> tuple[list[float], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(lambda _: fn(), range(jobs)))  # type: ignore[operator]
    return latencies, jobs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clients", default="1,8")
    opts = parser.parse_args()
    levels = [int(c) for c in opts.clients.split(",")]
    print(f"{'what':<28}{'clients':>8}{'p50 ms':>10}{'p90 ms':>10}{'mean ms':>10}{'jobs/s':>10}")
    with running_server(config="joblet:\n  maxConcurrentJobs: 1000\n") as client:
        for fn_name, fn in (("raw unshare+cgroup", raw_spawn),
                            ("jobyard API submit->done", lambda: api_spawn(client))):  # fmt: skip
            fn()  # warm-up
            for clients in levels:
                lat, rate = measure(fn, opts.jobs, clients)
                print(f"{fn_name:<28}{clients:>8}{pct(lat, 0.5):>10.1f}{pct(lat, 0.9):>10.1f}"
                      f"{statistics.mean(lat) * 1000:>10.1f}{rate:>10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
