"""The slurm backend against raw sbatch on the same cluster, side by side, as ratios.

    sudo .venv/bin/python bench/slurm.py [--jobs 10]

Needs the cluster of ../shared/tools/slurm-local.sh. Raw and jobyard jobs alternate, one at
a time, so each sees the same idle cluster. For each, from the moment of submission:

- RUNNING: raw = squeue first shows RUNNING (polled every 5 ms); jobyard = the API first
  shows RUNNING (GetJob polled every 5 ms), i.e. after the rank's command was spawned;
- command: the job's command itself writes the time it starts (its first action);
- end (jobyard only): the command's last action to the API showing COMPLETED;
- Slurm RUNNING (jobyard only): squeue first shows the jobyard job's allocation RUNNING,
  which tells Slurm's scheduling apart from jobyard's own overhead.

Prints p50/p95 of each and the ratios jobyard / raw (goal: RUNNING within 1.2x).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import bench_server

from jobyard.client import Client

POLL_SECONDS = 0.005
IDLE_SECONDS = 0.5  # before each submission: every job meets the same settled cluster
CONFIG = "jobyard:\n  backend: slurm\nslurm:\n  defaultTimeLimit: 5m\n"
STAMP = 'date +%s.%N > "$0"; sleep 0.3; date +%s.%N > "$0.end"'


def until(condition: object, timeout: float = 60) -> float:
    """Poll ``condition()`` until true; the time it first was."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the job did not get there in time")
        time.sleep(POLL_SECONDS)
    return time.time()


def stamp(path: Path, timeout: float = 60) -> float:
    until(lambda: path.exists() and path.read_text().strip(), timeout)
    return float(path.read_text())


def squeue_state(slurm_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", slurm_id, "-o", "%T"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip()


def raw_job(scratch: Path, i: int) -> tuple[float, float]:
    mark = scratch / f"raw-{i}"
    time.sleep(IDLE_SECONDS)
    t0 = time.time()
    out = subprocess.run(["sbatch", "--parsable", "--time=5", "--output=/dev/null",
                          "--wrap", f"sh -c '{STAMP}' {mark}"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    slurm_id = out.stdout.strip().split(";")[0]
    running = until(lambda: squeue_state(slurm_id) in ("RUNNING", "COMPLETING", "COMPLETED"))
    command = stamp(mark)
    stamp(Path(f"{mark}.end"))
    until(lambda: squeue_state(slurm_id) == "COMPLETED")
    return running - t0, command - t0


def slurm_id_of(client: Client, job_id: str) -> str:
    """From the job's history: "waiting in the slurm queue (backend id N)"."""
    for update in client.job(job_id).updates:
        if "backend id " in update.message:
            return update.message.rsplit("backend id ", 1)[1].rstrip(")")
    raise RuntimeError(f"job {job_id} was not handed to Slurm")


def jobyard_job(client: Client, data: Path) -> tuple[float, float, float, float]:
    time.sleep(IDLE_SECONDS)
    t0 = time.time()
    job = client.submit("sh", ["-c", STAMP, "/work/t"])
    slurm_id = slurm_id_of(client, job.id)
    allocated = until(lambda: squeue_state(slurm_id) in ("RUNNING", "COMPLETING", "COMPLETED"))
    running = until(lambda: client.job(job.id).status in ("RUNNING", "COMPLETED"))
    work = data / "jobs" / job.id / "work"
    command = stamp(work / "t")
    ended = stamp(work / "t.end")
    completed = until(lambda: client.job(job.id).status == "COMPLETED")
    return running - t0, command - t0, completed - ended, allocated - t0


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"  {name:34s} p50 {statistics.median(values) * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10, help="jobs of each kind")
    args = parser.parse_args()
    raw_running, raw_command, jy_running, jy_command, jy_end, jy_slurm = [], [], [], [], [], []
    with bench_server(CONFIG) as server, tempfile.TemporaryDirectory() as tmp:
        data = server.certs.parent / "data"
        jobyard_job(server.client, data)  # warm: the first job pays for imports
        for i in range(args.jobs):
            running, command = raw_job(Path(tmp), i)
            raw_running.append(running)
            raw_command.append(command)
            running, command, end, allocated = jobyard_job(server.client, data)
            jy_slurm.append(allocated)
            jy_running.append(running)
            jy_command.append(command)
            jy_end.append(end)
    print(f"slurm backend vs raw sbatch, {args.jobs} jobs each, alternating, one at a time:")
    print(summary("raw sbatch: submit -> RUNNING", raw_running))
    print(summary("jobyard:    submit -> Slurm RUNNING", jy_slurm))
    print(summary("jobyard:    submit -> RUNNING", jy_running))
    print(summary("raw sbatch: submit -> command", raw_command))
    print(summary("jobyard:    submit -> command", jy_command))
    print(summary("jobyard:    command end -> COMPLETED", jy_end))
    ratio = statistics.median(jy_running) / statistics.median(raw_running)
    print(f"  RUNNING ratio (p50 jobyard / raw):  {ratio:.2f}x   (goal <= 1.2x)")
    ratio = statistics.median(jy_command) / statistics.median(raw_command)
    print(f"  command ratio (p50 jobyard / raw):  {ratio:.2f}x")


if __name__ == "__main__":
    main()
