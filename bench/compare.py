"""Issue 10's table: jobyard next to its floors, measured in the same run, as ratios.

Rows (each figure beside its floor, and the ratio to it):

- sequential p50 submit->done: the raw floor (3 cgroup v1 hierarchies with limits +
  `unshare` pid/mount/uts/ipc + `setpriv` to nobody + `true`, see bench/spawn.py),
  task-spooler (`tsp -f`, no isolation; when installed) and jobyard through the seed API
  (RunJob, then GetJobLogs until the stream ends: completion seen by the log stream), mTLS;
- jobs/s with 8 concurrent clients, the same three;
- 1,000 jobs running at once: the server's RSS, and RunJob p99 for another client meanwhile;
- a 1,000-job fan-out/fan-in workflow against 1,000 raw isolated spawns in a row.

Goals (reported, never asserted): sequential p50 <= 1.5x floor; 8 clients >= 0.7x floor
and > task-spooler; RSS <= 150 MB with 1,000 running, RunJob p99 <= 50 ms; workflow
within 2x raw.

    sudo .venv/bin/python bench/compare.py [--jobs 200] [--running 1000] [--workflow 1000]
                                           [--clients 8] [--profile DIR]

``--profile DIR`` records the server with py-spy (``pip install py-spy``) during the
8-client phase: DIR/server.raw (collapsed stacks) and DIR/top.txt (the hottest frames).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import BenchServer, bench_server
from spawn import raw_spawn
from workflows import fan_out_fan_in

from jobyard.api.gen import joblet_pb2, joblet_pb2_grpc

Spawn = Callable[[], float]


# -- the three ways to run `true` ------------------------------------------------------------


class SeedClient:
    """One client of the seed API (joblet.JobletService) with its own mTLS channel."""

    def __init__(self, server: BenchServer) -> None:
        read = lambda name: (server.certs / name).read_bytes()  # noqa: E731
        credentials = grpc.ssl_channel_credentials(
            read("ca-cert.pem"), read("admin-client-key.pem"), read("admin-client-cert.pem")
        )
        self.channel = grpc.secure_channel(server.address, credentials)
        self.stub = joblet_pb2_grpc.JobletServiceStub(self.channel)

    def run(self, command: str, *args: str) -> str:
        res = self.stub.RunJob(joblet_pb2.RunJobReq(command=command, args=args))
        # The seed era's RunJobRes is flat {id=1, ...}; the older layout nests {job=1}.
        return str(res.id if "id" in res.DESCRIPTOR.fields_by_name else res.job.id)

    def spawn(self) -> float:
        """RunJob `true`, then its log stream to the end: seconds from submit to done."""
        started = time.perf_counter()
        job_id = self.run("true")
        for _ in self.stub.GetJobLogs(joblet_pb2.GetJobLogsReq(id=job_id)):
            pass
        return time.perf_counter() - started


@contextlib.contextmanager
def task_spooler(slots: int) -> Iterator[Spawn | None]:
    """`tsp -f -n true` against a private task-spooler server; None when not installed."""
    binary = shutil.which("tsp") or shutil.which("ts")
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="jobyard-bench-ts-") as tmp:
        env = {**os.environ, "TS_SOCKET": f"{tmp}/socket", "TMPDIR": tmp, "TS_MAXFINISHED": "10"}
        subprocess.run([binary, "-S", str(slots)], env=env, check=True)

        def spawn() -> float:
            started = time.perf_counter()
            subprocess.run([binary, "-f", "-n", "true"], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            return time.perf_counter() - started

        try:
            yield spawn
        finally:
            subprocess.run([binary, "-K"], env=env, check=False)


# -- measuring -----------------------------------------------------------------------------


def p(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def sequential(spawn: Spawn, jobs: int) -> float:
    """p50 ms of ``jobs`` spawns one after another (after one warm-up)."""
    spawn()
    return p([spawn() for _ in range(jobs)], 0.5)


def concurrent(spawns: list[Spawn], jobs: int) -> float:
    """Jobs/s of ``jobs`` spawns shared by ``len(spawns)`` clients."""
    per_client = max(1, jobs // len(spawns))
    started = time.perf_counter()
    with ThreadPoolExecutor(len(spawns)) as pool:
        for f in [pool.submit(lambda s=s: [s() for _ in range(per_client)]) for s in spawns]:
            f.result()
    return per_client * len(spawns) / (time.perf_counter() - started)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy record of ``pid`` while the block runs (nothing when ``out`` is None)."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = out / "server.raw"
    proc = subprocess.Popen([spy, "record", "-p", str(pid), "-f", "raw", "-o", str(raw),
                             "-r", "200", "--nonblocking"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1)  # attached
    try:
        yield
    finally:
        proc.send_signal(2)
        proc.wait(30)
        (out / "top.txt").write_text(top_frames(raw))


def top_frames(raw: Path, count: int = 25) -> str:
    """The frames most often on the stack (inclusive) and at its top (self), from py-spy's
    collapsed output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        total += int(n)
        own[frames[-1]] += int(n)
        for frame in set(frames):
            inclusive[frame] += int(n)
    lines = [f"{total} samples", "-- self --"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(count)]
    lines += ["-- inclusive --"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in inclusive.most_common(count)]
    return "\n".join(lines) + "\n"


# -- the table ---------------------------------------------------------------------------------


def row(what: str, value: float, floor: float, unit: str, goal: str) -> None:
    if not floor:  # a floor itself, or a figure with an absolute goal
        print(f"{what:<46}{value:>10.1f} {unit:<6}{'':>10}  {'':>7}   {goal}")
        return
    print(f"{what:<46}{value:>10.1f} {unit:<6}{floor:>10.1f}  {value / floor:6.2f}x   {goal}")


def spawn_rows(server: BenchServer, jobs: int, clients: int, profile: Path | None) -> None:
    seeds = [SeedClient(server) for _ in range(clients)]
    floor_seq = sequential(raw_spawn, jobs)
    yard_seq = sequential(seeds[0].spawn, jobs)
    floor_rate = concurrent([raw_spawn] * clients, jobs)
    with profiled(server.process.pid, profile):
        yard_rate = concurrent([s.spawn for s in seeds], jobs)
    print(f"{'':<46}{'value':>10} {'':<6}{'floor':>10}  {'ratio':>7}   goal")
    row("raw floor: p50 submit->done", floor_seq, 0, "ms", "")
    with task_spooler(clients) as tsp:
        if tsp is not None:
            tsp_seq, tsp_rate = sequential(tsp, jobs), concurrent([tsp] * clients, jobs)
            row("task-spooler: p50 submit->done", tsp_seq, floor_seq, "ms", "(no isolation)")
    row("jobyard seed API, mTLS: p50 submit->done", yard_seq, floor_seq, "ms", "<= 1.5x")
    row(f"raw floor: jobs/s, {clients} clients", floor_rate, 0, "/s", "")
    if tsp is not None:
        row(f"task-spooler: jobs/s, {clients} clients", tsp_rate, floor_rate, "/s", "")
    goal = ">= 0.7x" + (f" and > {tsp_rate:.0f}/s (tsp)" if tsp is not None else "")
    row(f"jobyard: jobs/s, {clients} clients", yard_rate, floor_rate, "/s", goal)
    for s in seeds:
        s.channel.close()


def running_rows(server: BenchServer, running: int, probes: int) -> None:
    """``running`` sleeping jobs at once: server RSS, and RunJob latency for another client."""
    loaders = [SeedClient(server) for _ in range(4)]
    per = running // len(loaders)
    with ThreadPoolExecutor(len(loaders)) as pool:
        ids = [i for f in [pool.submit(lambda c=c: [c.run("sleep", "600") for _ in range(per)])
                           for c in loaders] for i in f.result()]  # fmt: skip
    time.sleep(2)  # launched and settled
    rss = rss_mb(server.process.pid)
    other = SeedClient(server)
    latencies = []
    for _ in range(probes):
        started = time.perf_counter()
        other.run("true")
        latencies.append(time.perf_counter() - started)
    row(f"{len(ids)} jobs running: server RSS", rss, 0, "MB", "<= 150 MB")
    row("  meanwhile RunJob p99, another client", p(latencies, 0.99), 0, "ms", "<= 50 ms")
    print(f"  (RunJob p50 {p(latencies, 0.5):.1f} ms over {probes} calls)")
    client = server.new_client()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client.stop, ids))
    client.close()


def workflow_rows(server: BenchServer, jobs: int) -> None:
    started = time.perf_counter()
    for _ in range(jobs):
        raw_spawn()
    raw = time.perf_counter() - started
    started = time.perf_counter()
    status = server.client.run_workflow(fan_out_fan_in(jobs), name="compare")
    while not status.workflow.done:
        time.sleep(0.1)
        status = server.client.workflow(status.workflow.id)
    wall = time.perf_counter() - started
    assert status.workflow.status == "COMPLETED", status.workflow
    row(f"{jobs}-job fan-out/fan-in workflow: wall", wall, raw, "s", "<= 2x")
    print(f"  (floor: {jobs} raw isolated spawns in a row, {raw:.1f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="per spawn measurement")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--running", type=int, default=1000, metavar="N", help="0 to skip")
    parser.add_argument("--probes", type=int, default=200, help="RunJobs meanwhile")
    parser.add_argument("--workflow", type=int, default=1000, metavar="N", help="0 to skip")
    parser.add_argument("--profile", type=Path, metavar="DIR")
    opts = parser.parse_args()
    capacity = opts.running + opts.probes + opts.workflow + 100
    config = f"joblet:\n  maxConcurrentJobs: {capacity}\n"
    print(f"{os.cpu_count()} CPUs; {opts.jobs} jobs per spawn figure; times in ms unless s\n")
    with bench_server(config) as server:
        spawn_rows(server, opts.jobs, opts.clients, opts.profile)
        if opts.running:
            running_rows(server, opts.running, opts.probes)
        if opts.workflow:
            workflow_rows(server, opts.workflow)
    if opts.profile:
        print(f"\nprofile: {opts.profile}/top.txt")


if __name__ == "__main__":
    main()
