"""Lifecycle figures on a real server: how late time limits fire, how soon wait() returns,
watch fan-out, FIFO admission under a concurrency bound, listing/hashing and download speed.

    sudo .venv/bin/python bench/lifecycle.py [--jobs 20] [--watchers 50] [--file-mb 200]
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import running_server

from jobyard.client import Client


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"p50 {statistics.median(values) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def time_limits(client: Client, jobs: int, *, burst: bool) -> None:
    """How late the expiry fires (STOPPING's history entry) and when the job is STOPPED.

    ``burst``: all jobs submitted at once, so that expiries meet other jobs' launches.
    """
    ids = []
    for _ in range(jobs):
        ids.append(client.submit("sleep", ["60"], time_limit=1).id)
        if not burst:
            client.wait(ids[-1], timeout=60)
    fired, stopped = [], []
    for job_id in ids:
        done = client.wait(job_id, timeout=60)
        assert done.termination_reason == "TIME_LIMIT", done
        stopping = next(u for u in done.updates if u.status == "STOPPING")
        fired.append(ts(stopping.timestamp) - ts(done.expires_at))
        stopped.append(ts(done.end_time) - ts(done.expires_at))
    how = "submitted at once" if burst else "one at a time"
    print(f"time limit ({jobs} jobs, {how}):")
    print(f"  STOPPING after expiresAt                          {ms(fired)}")
    print(f"  STOPPED after expiresAt                           {ms(stopped)}")


def wait_latency(client: Client, jobs: int) -> None:
    """From the job's end to wait() returning: the server recording the end (after cleanup),
    then the watch event reaching the client."""
    recorded, delivered = [], []
    for _ in range(jobs):
        job = client.submit("sleep", ["0.2"])
        done = client.wait(job.id, timeout=60)
        returned = time.time()
        final = ts(done.updates[-1].timestamp)
        recorded.append(final - ts(done.end_time))
        delivered.append(returned - final)
    print(f"wait() ({jobs} jobs):")
    print(f"  end recorded after the process ended              {ms(recorded)}")
    print(f"  wait() returned after the end was recorded        {ms(delivered)}")


def fan_out(client: Client, watchers: int, jobs: int) -> None:
    """``watchers`` clients watching every job while ``jobs`` run: all see every end?"""
    ready = threading.Barrier(watchers + 1)
    warmup = client.submit("true").id  # so that every snapshot has a first event
    client.wait(warmup)
    done_at: list[float] = []

    def watch() -> int:
        seen: set[str] = set()
        stream = client.watch(timeout=120)
        next(stream)  # subscribed
        ready.wait()
        for event in stream:
            if event.job.status == "COMPLETED" and event.job.id != warmup:
                seen.add(event.job.id)
                if len(seen) == jobs:
                    done_at.append(time.monotonic())
                    break
        stream.close()  # type: ignore[attr-defined]
        return len(seen)

    with ThreadPoolExecutor(watchers) as pool:
        futures = [pool.submit(watch) for _ in range(watchers)]
        ready.wait()
        start = time.monotonic()
        for _ in range(jobs):
            client.submit("true")
        counts = [f.result() for f in futures]
    print(f"watch fan-out: {watchers} watchers x {jobs} jobs: every watcher saw "
          f"{min(counts)}/{jobs} ends; last watcher done "
          f"{(max(done_at) - start) * 1000:.0f} ms after the first submit")  # fmt: skip


def user_stop(client: Client, jobs: int) -> None:
    """The same stop, asked by a user: from the request to the recorded end."""
    late = []
    for _ in range(jobs):
        job = client.submit("sleep", ["60"])
        for event in client.watch([job.id], timeout=60):
            if event.job.status == "RUNNING":
                break
        asked = time.time()
        client.stop(job.id)
        late.append(ts(client.job(job.id).end_time) - asked)
    print(f"user stop: STOPPED after the request ({jobs} jobs)     {ms(late)}")


def admission_order(jobs: int) -> None:
    with running_server("joblet:\n  maxConcurrentJobs: 4\n") as client:
        start = time.monotonic()
        ids = [client.submit("sleep", ["0.1"]).id for _ in range(jobs)]
        finished = [client.wait(i, timeout=120) for i in ids]
        took = time.monotonic() - start
        starts = [ts(j.start_time) for j in finished]
        in_order = all(a <= b for a, b in itertools.pairwise(starts))
        ideal = jobs / 4 * 0.1
        print(
            f"admission: {jobs} x 'sleep 0.1' with maxConcurrentJobs 4: {took:.2f} s "
            f"(sleeping alone: {ideal:.2f} s); started in submission order: {in_order}"
        )


def files(client: Client, file_mb: int) -> None:
    script = f"head -c {file_mb}M /dev/urandom > big.bin; mkdir many; cd many; " \
             "for i in $(seq 1 1000); do echo $i > f$i; done"  # fmt: skip
    job = client.submit("sh", ["-c", script], max_memory=256)
    client.wait(job.id, timeout=300)
    for label in ("first (hashes)", "again (cached)"):
        start = time.monotonic()
        listed = client.files(job.id)
        print(f"files: ListFiles of {len(listed)} files, {file_mb} MB, {label}: "
              f"{(time.monotonic() - start) * 1000:.0f} ms")  # fmt: skip
    out = io.BytesIO()
    start = time.monotonic()
    size = client.download(job.id, "big.bin", out)
    took = time.monotonic() - start
    print(f"files: DownloadFile {size / 2**20:.0f} MB in {took:.2f} s = "
          f"{size / 2**20 / took:.0f} MB/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--file-mb", type=int, default=200)
    args = parser.parse_args()
    with running_server() as client:
        time_limits(client, args.jobs, burst=False)
        time_limits(client, args.jobs, burst=True)
        user_stop(client, args.jobs)
        wait_latency(client, args.jobs)
        fan_out(client, args.watchers, args.jobs)
        files(client, args.file_mb)
    admission_order(args.jobs * 2)


if __name__ == "__main__":
    main()
