"""What attaching costs a job: submit->done latency of `true` with nothing attached (the
baseline, measured in the same run), with a volume, a runtime, an upload, --network isolated
and a created network (a netns, a veth pair and an address per job).

    sudo .venv/bin/python bench/attachments.py [--jobs 30]

Prints median and p90 per variant and the median's excess over the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import bench_server

from jobyard.client import Client

WAIT_SECONDS = 60


def latencies(client: Client, jobs: int, **submit: object) -> list[float]:
    out = []
    for _ in range(jobs):
        started = time.perf_counter()
        job = client.submit("true", **submit)  # type: ignore[arg-type]
        done = client.wait(job.id, timeout=WAIT_SECONDS)
        assert done.status == "COMPLETED", done
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args()
    with bench_server() as server, tempfile.TemporaryDirectory() as tmp:
        client = server.client
        tree = Path(tmp) / "rt"
        (tree / "bin").mkdir(parents=True)
        (Path(tmp) / "input.bin").write_bytes(b"x" * 256 * 1024)
        client.create_volume("bench", "64MB")
        client.install_runtime("bench-rt", tree)
        client.create_network("bench-net", "10.99.0.0/24")
        variants: list[tuple[str, Callable[[], list[float]]]] = [
            ("nothing (baseline)", lambda: latencies(client, args.jobs)),
            ("--volume", lambda: latencies(client, args.jobs, volumes=["bench"])),
            ("--runtime", lambda: latencies(client, args.jobs, runtime="bench-rt")),
            ("--upload 256 KiB", lambda: latencies(client, args.jobs,
                                                   uploads=[Path(tmp) / "input.bin"])),
            ("--network isolated", lambda: latencies(client, args.jobs, network="isolated")),
            ("--network NAME", lambda: latencies(client, args.jobs, network="bench-net")),
        ]  # fmt: skip
        try:
            latencies(client, 3)  # warm-up
            print(f"{'attached':<22}{'jobs':>6}{'median ms':>11}{'p90 ms':>9}"
                  f"{'+ms vs base':>13}")  # fmt: skip
            base = 0.0
            for label, run in variants:
                times = sorted(run())
                median = statistics.median(times) * 1000
                p90 = times[int(len(times) * 0.9) - 1] * 1000
                base = base or median
                print(f"{label:<22}{len(times):>6}{median:>11.1f}{p90:>9.1f}"
                      f"{median - base:>13.1f}")  # fmt: skip
        finally:  # the volume's mount and the bridge outlive the server otherwise
            client.remove_network("bench-net")
            client.remove_volume("bench")


if __name__ == "__main__":
    main()
