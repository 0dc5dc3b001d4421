"""Job output: capture throughput next to a shell redirect, live latency, fan-out.

Everything is measured in one run against a real `jobyard server` subprocess whose data
directory is on the same filesystem as the shell-redirect baseline:

- capture: a job writing 1 GiB to stdout vs `sh -c 'head -c 1G /dev/zero > file'`, and a
  job printing 5,000,000 short lines vs `seq 1 5000000 > file` (submit -> done, so the job
  figures include launching the isolated job, and a third row runs the same command
  redirected to a file inside the job: same isolation, no capture);
- history: one follower reading a finished job's output;
- latency: a job printing a timestamp line every 5 ms; a follower subtracts it from its
  receive time (same host clock);
- fan-out: N followers (in several client processes) of one job, aggregate MB/s.

    sudo .venv/bin/python bench/logs.py [--capture-bytes 1G] [--lines 5000000]
        [--latency-lines 1000] [--followers 100] [--fanout-bytes 50M] [--rounds 5]
        [--max-memory MB]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import running_server

from jobyard.client import Client

CONFIG = "jobyard:\n  maxOutputBytes: 0\njoblet:\n  maxConcurrentJobs: 1000\n"
TIMESTAMPS = """
import sys, time
for _ in range(int(sys.argv[1])):
    sys.stdout.write(f"{time.time_ns()}\\n")
    sys.stdout.flush()
    time.sleep(0.005)
"""


def size_arg(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def shell(command: str) -> float:
    """Seconds a shell command takes, run outside jobyard (the baseline)."""
    started = time.perf_counter()
    subprocess.run(["sh", "-c", command], check=True)
    return time.perf_counter() - started


def job_seconds(
    client: Client, command: str, args: list[str], max_memory: int = 0
) -> tuple[float, int]:
    """Seconds from submit to done for one job (told by the server's job events, so
    nothing polls), and the bytes of output it left."""
    started = time.perf_counter()
    job = client.submit(command, args, max_memory=max_memory)
    done = client.wait(job.id, timeout=600)
    elapsed = time.perf_counter() - started
    assert done.status == "COMPLETED", done
    tail = list(client.read_logs(job.id, tail=1))
    return elapsed, tail[-1].end if tail else 0


def compare(
    client: Client, scratch: Path, command: str, rounds: int, max_memory: int
) -> tuple[float, float, float, int]:
    """Median seconds of ``command``: redirected to a file by sh on the host; as a job
    writing to stdout (captured); as a job redirecting to a file in its own work directory
    (same isolation, no capture). Alternating, each from a clean page cache state."""
    target = scratch / "redirect.out"
    runs: list[list[float]] = [[], [], []]
    written = 0
    for _ in range(rounds):
        subprocess.run(["sync"], check=True)  # no dirty pages left over from the last run
        runs[0].append(shell(f"{command} > {target}"))
        target.unlink()
        subprocess.run(["sync"], check=True)
        seconds, written = job_seconds(client, "sh", ["-c", f"exec {command}"], max_memory)
        runs[1].append(seconds)
        subprocess.run(["sync"], check=True)
        own_file = ["-c", f"{command} > out; rm out"]
        runs[2].append(job_seconds(client, "sh", own_file, max_memory)[0])
    host, captured, own_file = (statistics.median(r) for r in runs)
    return host, captured, own_file, written


def capture(
    client: Client, scratch: Path, nbytes: int, lines: int, rounds: int, max_memory: int
) -> None:
    print(f"capture, median of {rounds} (jobs: submit->done)"
          f"{'seconds':>11}{'MB/s':>9}{'lines/s':>13}{'ratio':>7}")  # fmt: skip
    for command, count in ((f"head -c {nbytes} /dev/zero", 0), (f"seq 1 {lines}", lines)):
        host, captured, own_file, written = compare(client, scratch, command, rounds, max_memory)
        _row(f"sh -c '{command} > file'", host, written, count)
        _row(f"job: {command}  (stdout captured)", captured, written, count, host / captured)
        _row("job: the same > file in its work dir", own_file, written, count, host / own_file)


def _row(what: str, seconds: float, nbytes: int, lines: int = 0, ratio: float = 0) -> None:
    rate = f"{lines / seconds:>13,.0f}" if lines else f"{'':>13}"
    share = f"{ratio:>7.2f}" if ratio else ""
    print(f"{what:<52}{seconds:>9.3f}{nbytes / seconds / 1e6:>9.0f}{rate}{share}")


def history_read(client: Client, nbytes: int) -> None:
    """One follower reading a finished job's whole output (the history path)."""
    job = client.submit("head", ["-c", str(nbytes), "/dev/zero"])
    client.wait(job.id, timeout=600)
    started = time.perf_counter()
    received = sum(len(chunk.data) for chunk in client.read_logs(job.id))
    elapsed = time.perf_counter() - started
    assert received == nbytes, received
    print(f"\none follower reading {nbytes / 1e6:.0f} MB of history: {elapsed:.2f} s = "
          f"{received / elapsed / 1e6:.0f} MB/s")  # fmt: skip


def latency(client: Client, count: int) -> None:
    job = client.submit("python3", ["-c", TIMESTAMPS, str(count)])
    delays: list[float] = []
    pending = b""
    for chunk in client.read_logs(job.id, follow=True):
        now = time.time_ns()
        pending += chunk.data
        *lines, pending = pending.split(b"\n")
        delays += [(now - int(line)) / 1e6 for line in lines]
    delays.sort()
    p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99)]
    print(f"\nlive latency write->follower ({len(delays)} lines, one every 5 ms): "
          f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {delays[-1]:.2f} ms")  # fmt: skip


def _follow_many(args: tuple[str, str, str, str, str, int]) -> list[tuple[int, float, float]]:
    """In a client process: ``n`` followers in threads; each returns the bytes it received
    and the times of its first and last chunk."""
    from concurrent.futures import ThreadPoolExecutor

    server, cert, key, ca, job_id, n = args
    with Client(server, cert, key, ca) as client:

        def follow(_: int) -> tuple[int, float, float]:
            received, first, last = 0, 0.0, 0.0
            for chunk in client.read_logs(job_id, follow=True):
                last = time.time()
                first = first or last
                received += len(chunk.data)
            return received, first, last

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(follow, range(n)))


def _warm(_: int) -> None:
    import jobyard.client  # noqa: F401  (import grpc and the SDK before the clock starts)


def fanout(client: Client, followers: int, nbytes: int) -> None:
    processes = min(8, followers)
    shares = [followers // processes + (i < followers % processes) for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_warm, range(processes))
        job = client.submit("sh", ["-c", f"sleep 1; head -c {nbytes} /dev/urandom"])
        s = client.settings
        work = [(s.server, str(s.cert), str(s.key), str(s.ca), job.id, n) for n in shares]
        results = [r for batch in pool.map(_follow_many, work) for r in batch]
    received = sum(r[0] for r in results)
    assert received == followers * nbytes, (received, followers * nbytes)
    elapsed = max(r[2] for r in results) - min(r[1] for r in results)
    print(f"\nfan-out: {followers} followers of one job writing {nbytes / 1e6:.0f} MB "
          f"({processes} client processes): {received / 1e6:.0f} MB delivered in "
          f"{elapsed:.2f} s = {received / elapsed / 1e6:.0f} MB/s aggregate")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture-bytes", type=size_arg, default=1 << 30)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--latency-lines", type=int, default=1000)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--fanout-bytes", type=size_arg, default=50 << 20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--max-memory",
        type=int,
        default=0,
        help="maxMemory (MB) of the capture jobs; 0 = the server default (512). The page "
        "cache a job dirties is charged to its memory cgroup.",
    )
    opts = parser.parse_args()
    memory = f"{opts.max_memory} MB" if opts.max_memory else "the default 512 MB"
    print(f"host: {os.cpu_count()} CPUs; data directory under {tempfile.gettempdir()}; "
          f"capture jobs' maxMemory: {memory}\n")  # fmt: skip
    with running_server(config=CONFIG) as client, tempfile.TemporaryDirectory() as scratch:
        capture(client, Path(scratch), opts.capture_bytes, opts.lines, opts.rounds, opts.max_memory)
        history_read(client, opts.capture_bytes)
        latency(client, opts.latency_lines)
        fanout(client, opts.followers, opts.fanout_bytes)


if __name__ == "__main__":
    main()
