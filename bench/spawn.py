"""Isolated-job spawning: latency and throughput next to raw floors, the memory a running
job costs, and whether cgroups pile up over many jobs.

Floors, measured in the same run, with no API, no store and no supervisor:

- ``raw unshare+cgroup``: 3 cgroups with limits + `unshare` (pid, mount, ipc, uts) +
  `setpriv` to an unprivileged user + `true`, then cgroup removal.
- ``raw, jobyard's isolation``: the same with everything jobyard's launch chain must do
  on this host: every cgroup hierarchy it uses (7 on v1), and the job's file system view
  (runtime/local/mounts.py: /work, private /run /tmp /var/tmp /dev/shm /proc, the replica
  files, the root read-only, the data dir hidden) mounted before the command.

``jobyard API submit->done, --max-disk`` adds the job's own ext4 /work (mkfs + loop mount).

    sudo .venv/bin/python bench/spawn.py [--jobs 100] [--clients 1,8] [--memory 200]
                                         [--churn 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import running_server

from jobyard.client import Client
from jobyard.domain.jobs import JobSpec
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local.cgroups import CgroupV1, detect_cgroups
from jobyard.runtime.local.mounts import JobView, rank_mounts

CGROUP_V1 = Path("/sys/fs/cgroup")
NOBODY = "65534"
KIB = 1024


# -- floors ---------------------------------------------------------------------------------


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


def job_view_fstab(data: Path) -> Path:
    """The fstab a one-rank job gets from the runtime, for a fake job under ``data``."""
    job = data / "jobs" / "bench"
    request = LaunchRequest("bench", JobSpec("true"), job / "output.log", job / "run",
                            job / "work")  # fmt: skip
    (job / "run" / "info").mkdir(parents=True)
    (job / "work").mkdir()
    for path in (job / "run" / "info" / "rank.txt", job / "run" / "rank.txt"):
        path.write_text("0\n")
    view = JobView(int(NOBODY), int(NOBODY), (data,))
    fstab = job / "run" / "mounts.fstab"
    fstab.write_text("".join(m.line() + "\n" for m in rank_mounts(request, job / "run", view)))
    return fstab


def isolated_spawn(fstab: Path) -> float:
    """`true` with jobyard's isolation (every hierarchy, the mounts), no API: seconds."""
    name = f"jobyard-bench-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    mounts = _v1_mounts()
    dirs = [mount / name for mount in sorted(set(mounts.values()))]
    for d in dirs:
        d.mkdir()
    for f in ("cpuset.cpus", "cpuset.mems"):
        (mounts["cpuset"] / name / f).write_text((mounts["cpuset"] / f).read_text())
    (mounts["cpu"] / name / "cpu.cfs_quota_us").write_text("100000")
    (mounts["memory"] / name / "memory.limit_in_bytes").write_text(str(512 << 20))
    (mounts["pids"] / name / "pids.max").write_text("1024")
    join = "; ".join(f"echo 0 > {d}/cgroup.procs" for d in dirs)
    subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--ipc", "--uts", "--propagation", "private",
         "sh", "-c", f"{join}; mount --all --no-mtab --internal-only --fstab {fstab}; "
         f"exec setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups --no-new-privs true"],
        check=True,
    )  # fmt: skip
    for d in dirs:
        d.rmdir()
    return time.perf_counter() - started


def _v1_mounts() -> dict[str, Path]:
    """Controller -> hierarchy, as jobyard's runtime uses them."""
    driver = detect_cgroups()
    if not isinstance(driver, CgroupV1):
        raise SystemExit("this benchmark is written for cgroup v1 hosts")
    return dict(driver.mounts)


def api_spawn(client: Client, max_disk: int = 0) -> float:
    started = time.perf_counter()
    job = client.submit("true", max_disk=max_disk)
    done = client.wait(job.id, timeout=60)
    assert done.status == "COMPLETED", done
    took = time.perf_counter() - started
    if max_disk:
        client.delete(job.id)  # unmounts its /work (a finished job's stays mounted)
    return took


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def measure(fn: Callable[[], float], jobs: int, clients: int) -> tuple[list[float], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(lambda _: fn(), range(jobs)))
    return latencies, jobs / (time.perf_counter() - started)


def latency(client: Client, jobs: int, levels: list[int]) -> None:
    print(f"{'what':<28}{'clients':>8}{'p50 ms':>10}{'p90 ms':>10}{'mean ms':>10}{'jobs/s':>10}")
    # Outside /tmp, so that the data dir is hidden as a real one is.
    with tempfile.TemporaryDirectory(dir="/var/lib") as tmp:
        fstab = job_view_fstab(Path(tmp))
        rows: list[tuple[str, Callable[[], float]]] = [
            ("raw unshare+cgroup", raw_spawn),
            ("raw, jobyard's isolation", lambda: isolated_spawn(fstab)),
            ("jobyard API submit->done", lambda: api_spawn(client)),
            ("  the same, --max-disk 100", lambda: api_spawn(client, max_disk=100)),
        ]
        for name, fn in rows:
            fn()  # warm-up
            for clients in levels:
                lat, rate = measure(fn, jobs, clients)
                print(f"{name:<28}{clients:>8}{pct(lat, 0.5):>10.1f}{pct(lat, 0.9):>10.1f}"
                      f"{statistics.mean(lat) * 1000:>10.1f}{rate:>10.1f}")  # fmt: skip


# -- memory per running job ---------------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """Rss, Pss and private (USS) memory of one process, in KiB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    private = fields["Private_Clean"] + fields["Private_Dirty"]
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": private}


def supervisors(job_ids: set[str]) -> Iterator[int]:
    """Pids of the per-job supervisors (shim.sh) of these jobs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1].endswith(b"shim.sh"):
            state_dir = Path(argv[2].decode())
            if state_dir.parent.name in job_ids:
                yield int(entry.name)


def available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def memory(client: Client, count: int) -> None:
    before = available_kib()
    jobs = [client.submit("sleep", ["300"]) for _ in range(count)]
    ids = {job.id for job in jobs}
    shims = list(supervisors(ids))
    host_kib = (before - available_kib()) / count
    sums = {"rss": 0, "pss": 0, "uss": 0}
    for pid in shims:
        for key, value in memory_kib(pid).items():
            sums[key] += value
    python = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    time.sleep(0.5)
    interpreter = memory_kib(python.pid)
    python.kill()
    python.wait()
    for job in jobs:
        client.stop(job.id)
    print(f"\n{count} sleeping jobs: {len(shims)} supervisors (one `sh` each, no interpreter)")
    print(f"{'per job, KiB':<34}{'RSS':>8}{'PSS':>8}{'USS':>8}")
    n = max(len(shims), 1)
    print(f"{'supervisor (shim.sh)':<34}{sums['rss'] / n:>8.0f}{sums['pss'] / n:>8.0f}"
          f"{sums['uss'] / n:>8.0f}")  # fmt: skip
    print(f"{'a Python interpreter, for scale':<34}{interpreter['rss']:>8}"
          f"{interpreter['pss']:>8}{interpreter['uss']:>8}")  # fmt: skip
    print(
        f"host MemAvailable drop per job (job's own `sleep`, cgroups, supervisor): "
        f"{host_kib:.0f} KiB (noisy if the host is busy)"
    )


# -- cgroups over many jobs -------------------------------------------------------------------


def cgroup_dirs(root_name: str) -> tuple[int, int]:
    """Directories under the server's cgroup root in every hierarchy, and in the whole tree."""
    ours = total = 0
    for mount in set(_v1_mounts().values()):
        for _, subdirs, _ in os.walk(mount):
            total += len(subdirs)
        if (mount / root_name).is_dir():
            ours += sum(1 for p in (mount / root_name).iterdir() if p.is_dir())
    return ours, total


def churn(client: Client, count: int, root_name: str) -> None:
    before = cgroup_dirs(root_name)
    started = time.perf_counter()
    measure(lambda: api_spawn(client), count, 8)
    elapsed = time.perf_counter() - started
    after = cgroup_dirs(root_name)
    print(
        f"\n{count} jobs in a row (8 clients, {elapsed:.1f} s): job cgroups under "
        f"{root_name}/ before {before[0]}, after {after[0]}; all cgroup directories on the "
        f"host before {before[1]}, after {after[1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--memory", type=int, default=200, metavar="N", help="0 to skip")
    parser.add_argument("--churn", type=int, default=1000, metavar="N", help="0 to skip")
    opts = parser.parse_args()
    root_name = f"jobyard-bench-{uuid.uuid4().hex[:8]}"
    config = f"joblet:\n  maxConcurrentJobs: 1000\njobyard:\n  cgroupRoot: {root_name}\n"
    with running_server(config=config) as client:
        if opts.jobs:
            latency(client, opts.jobs, [int(c) for c in opts.clients.split(",")])
        if opts.memory:
            memory(client, opts.memory)
        if opts.churn:
            churn(client, opts.churn, root_name)
    for mount in set(_v1_mounts().values()):
        if (mount / root_name).is_dir():
            (mount / root_name).rmdir()


if __name__ == "__main__":
    main()
