"""One rank inside a Slurm allocation: ``python -m jobyard.runtime.slurm.step STATE RANK``.

Runs as root in the rank's Slurm step (so the processes stay in Slurm's cgroups: its memory
limit, OOM verdict, suspend and cancel reach them), and isolates the rank as the local
runtime does::

    step (root) --spawn--> unshare --pid --mount --ipc --uts [--net]
                             `--exec--> sh shim.sh (the local runtime's supervisor: records
                                          |         the rank's exit status in ``exit``)
                                          `--fork--> sh (PID 1): cd WORKDIR, mounts the
                                                     rank's /proc, /dev/shm, /tmp and rank
                                                     files (runtime/local/mounts.py)
                                                     `--exec--> setpriv --reuid JOB_USER ...
                                                                `--exec--> CMD (PID 1)

The environment travels in a memfd on stdin and is read only after the drop to the job user
(as in the local runtime). The step writes ``started`` once the chain is spawned and, once
the shim recorded ``exit``, ``oom`` (when the rank's memory cgroup saw an OOM kill) and then
``done``: the files the server watches.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from jobyard.domain.jobs import NETWORK_NONE
from jobyard.runtime.local import mounts
from jobyard.runtime.local.processes import dies_of_sigterm, first_child, send_signal
from jobyard.runtime.local.runtime import (
    ENV_STAGE,
    JOB_LANG,
    JOB_PATH,
    OPEN_STAGE,
    SHIM_SCRIPT,
    TOOL_PATH,
    _env_memfd,
)
from jobyard.runtime.local.supervisors import rank_dir
from jobyard.runtime.local.workdirs import preallocate_exit
from jobyard.runtime.ranks import RankInfo
from jobyard.runtime.slurm.launch import (
    DONE_FILE,
    EXIT_FILE,
    LAUNCH_FILE,
    OOM_FILE,
    STARTED_FILE,
    SlurmLaunch,
)

LAUNCH_FAILED_EXIT_CODE = 125
NODES_ENV = "JOBYARD_SLURM_NODES"  # set by the launcher: each rank's node, in rank order
_CGROUP_V1 = Path("/sys/fs/cgroup/memory")


def tool(name: str) -> str:
    path = shutil.which(name, path=TOOL_PATH)
    if path is None:
        raise SystemExit(f"jobyard step: {name} not found (util-linux)")
    return path


def chain(launch: SlurmLaunch, rank: int) -> list[str]:
    """The isolation chain of one rank, around the local runtime's shim (TODO: share one
    argv builder with runtime/local once its launch chain settles)."""
    namespaces = ["--pid", "--mount", "--ipc", "--uts", "--propagation", "private"]
    if launch.network == NETWORK_NONE:
        namespaces.append("--net")
    state = rank_dir(Path(launch.state_dir), rank)  # OPEN_STAGE's files are here (cwd)
    drop = [tool("setpriv"), f"--reuid={launch.uid}", f"--regid={launch.gid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]  # fmt: skip
    command = ["/bin/sh", "-c", ENV_STAGE, "jobyard", launch.command, *launch.args]
    shim = ["/bin/sh", str(SHIM_SCRIPT), mounts.WORK_DIR, tool("mount"),
            str(state / mounts.FSTAB_FILE), "--"]  # fmt: skip
    return ["/bin/sh", "-c", OPEN_STAGE, "jobyard-open", tool("unshare"), *namespaces, "--",
            *shim, *drop, *command]  # fmt: skip


def environment(launch: SlurmLaunch, info: RankInfo, rank: int) -> dict[str, str]:
    env = {"PATH": JOB_PATH, "HOME": mounts.WORK_DIR, "LANG": JOB_LANG}
    env |= launch.environment
    env |= info.environment(rank)  # last: a job cannot be told a wrong rank
    return env


def oom_kills() -> int:
    """OOM kills seen by this process's memory cgroup and its ancestors (cgroup v1)."""
    try:
        line = next(x for x in Path("/proc/self/cgroup").read_text().splitlines()
                    if x.split(":")[1].split(",").count("memory"))  # fmt: skip
    except (OSError, StopIteration, IndexError):
        return 0
    path, total = _CGROUP_V1 / line.split(":", 2)[2].lstrip("/"), 0
    while path != _CGROUP_V1.parent and _CGROUP_V1 in (path, *path.parents):
        try:
            for entry in (path / "memory.oom_control").read_text().splitlines():
                if entry.startswith("oom_kill "):
                    total += int(entry.split()[1])
        except (OSError, ValueError):
            pass
        path = path.parent
    return total


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(launch: SlurmLaunch, info: RankInfo, rank: int) -> int:
    state = rank_dir(Path(launch.state_dir), rank)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    env_fd = _env_memfd(environment(launch, info, rank))
    output = os.open(launch.outputs[rank], flags, 0o640)
    before = oom_kills()
    try:
        preallocate_exit(state / EXIT_FILE)
        proc = subprocess.Popen(chain(launch, rank), stdin=env_fd, stdout=output, stderr=output,
                                env={"PATH": TOOL_PATH}, cwd=state, close_fds=True)  # fmt: skip
    except OSError as exc:
        print(f"jobyard step: cannot start rank {rank}: {exc}", file=sys.stderr)
        (state / "launch-error").write_text(f"cannot start the rank: {exc}\n")
        write_atomic(state / EXIT_FILE, f"{LAUNCH_FAILED_EXIT_CODE}\n")
        (state / DONE_FILE).touch()
        return LAUNCH_FAILED_EXIT_CODE
    finally:
        os.close(env_fd)
        os.close(output)
    write_atomic(state / STARTED_FILE, datetime.now(UTC).isoformat() + "\n")

    def on_stop(signum: int, frame: object) -> None:
        end_lone_init(proc.pid)
        # What SIGTERM did not end is killed once the grace is over (PID 1 first: its end
        # ends every process of the rank's namespace).
        signal.signal(signal.SIGALRM, lambda *_: kill_init(proc.pid))
        signal.setitimer(signal.ITIMER_REAL, max(launch.stop_grace_seconds, 0.001))

    signal.signal(signal.SIGTERM, on_stop)
    proc.wait()  # the shim recorded the rank's exit status in its exit file
    if oom_kills() > before:
        (state / OOM_FILE).touch()
    (state / DONE_FILE).touch()
    try:
        return int((state / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return LAUNCH_FAILED_EXIT_CODE


def end_lone_init(shim_pid: int) -> None:
    """A stop's SIGTERM reached every process of the step, but the kernel spares the
    rank's PID 1 a signal it has no handler for: end it as SIGTERM would have (as the
    local runtime does). The shim itself ignores SIGTERM: it records the end."""
    init = first_child(shim_pid)
    if init is not None and dies_of_sigterm(init):
        send_signal(init, signal.SIGKILL)


def kill_init(shim_pid: int) -> None:
    init = first_child(shim_pid)
    if init is not None:
        send_signal(init, signal.SIGKILL)


def main(argv: list[str]) -> int:
    state_dir, rank = Path(argv[1]), int(argv[2])
    # Slurm signals every process of the step: this one must outlive a stop's SIGTERM to
    # record how the rank ended (SIGKILL still ends it; the server then asks Slurm). A
    # handler, not SIG_IGN: exec resets a handler, so the command gets SIGTERM's default.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    launch = SlurmLaunch.read(state_dir / LAUNCH_FILE)
    nodes = tuple(filter(None, os.environ.get(NODES_ENV, "").split(",")))
    if not nodes:  # a one-rank job's step is the batch step: no launcher ran before it
        nodes = (os.environ.get("SLURMD_NODENAME") or os.uname().nodename,)
        mounts.write_shared_info(state_dir, RankInfo(launch.info_job_id, 1, launch.cores, nodes))
    info = RankInfo(launch.info_job_id, launch.replicas, launch.cores, nodes)
    mounts.make_mount_points()
    mounts.write_rank_mounts(launch.request(), rank, rank_dir(state_dir, rank), launch.view())
    return run(launch, info, rank)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
