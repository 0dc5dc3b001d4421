"""One rank inside a Slurm allocation: ``python -S step.py STATE RANK`` (stdlib only).

Runs as root in the rank's Slurm step (so the processes stay in Slurm's cgroups: its memory
limit, OOM verdict, suspend and cancel reach them) and spawns the chain the server prepared
in ``STATE/launch.json`` (:func:`jobyard.runtime.slurm.launch.chain`)::

    step (root) --spawn--> sh -c OPEN_STAGE: the rank's exit, shim.log, launch-error
                  `--exec--> unshare --pid --mount --ipc --uts [--net]
                               `--exec--> sh shim.sh (the local runtime's supervisor:
                                            |         records the rank's exit status)
                                            `--fork--> sh (PID 1): the job's file system
                                                       view (mounts.py), cd /work
                                                       `--exec--> setpriv (the job's uid)
                                                                  `--exec--> CMD (PID 1)

The environment travels in a memfd on stdin and is read only after the drop to the job
user (as in the local runtime). The step writes ``started`` once the chain is spawned and,
once the shim recorded ``exit``, ``oom`` (when the rank's memory cgroup saw an OOM kill)
and then ``done``: the files the server watches.

It imports nothing of jobyard, and starts without site packages: the few lines it shares
with runtime/local/processes.py (the PID 1 that SIGTERM cannot reach) are repeated here,
since importing jobyard costs hundreds of milliseconds per job on the way to RUNNING.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from typing import Any

NODES_ENV = "JOBYARD_SLURM_NODES"  # set by the launcher: each rank's node, in rank order
LAUNCH_FAILED_EXIT_CODE = 125
EXIT_PLACEHOLDER = b" " * 15 + b"\n"  # as the local runtime preallocates the exit record
CGROUP_MEMORY = "/sys/fs/cgroup/memory"
RANKS_STOP = "ranks-stop"  # in the state dir: a rank failed, the others are to stop
STOP_POLL_MS = 50


def first_child(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def dies_of_sigterm(pid: int) -> bool:
    """Whether SIGTERM would end ``pid`` by default: neither caught, ignored nor blocked."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return False
    bit = 1 << (signal.SIGTERM - 1)
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn", "SigCgt") and int(value, 16) & bit:
            return False
    return True


def kill_init(shim_pid: int, only_if_default: bool) -> None:
    """SIGKILL the rank's PID 1 (the kernel spares it a SIGTERM it has no handler for)."""
    init = first_child(shim_pid)
    if init is not None and (not only_if_default or dies_of_sigterm(init)):
        try:  # noqa: SIM105 (contextlib is one more import at every job start)
            os.kill(init, signal.SIGKILL)
        except ProcessLookupError:
            pass


def oom_kills() -> int:
    """OOM kills seen by this process's memory cgroup and its ancestors (cgroup v1)."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        path = next(x.split(":", 2)[2] for x in lines if "memory" in x.split(":")[1].split(","))
    except (OSError, StopIteration, IndexError):
        return 0
    total, parts = 0, [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
        try:
            with open("/".join([CGROUP_MEMORY, *parts[:depth], "memory.oom_control"])) as f:
                for entry in f.read().splitlines():
                    if entry.startswith("oom_kill "):
                        total += int(entry.split()[1])
        except (OSError, ValueError):
            pass
    return total


def write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_node_files(state_dir: str, nodes: list[str]) -> None:
    for rank, node in enumerate(nodes):
        path = os.path.join(state_dir, "info", f"node-{rank}.txt")
        write(path, f"{node}\n")
        os.chmod(path, 0o644)


def env_fd(script: str, nodes: list[str]) -> int:
    quoted = ",".join(nodes).replace("'", "'\\''")
    data = (script + f"export JOBYARD_NODES='{quoted}'\n").encode()
    fd = os.memfd_create("jobyard-env", os.MFD_CLOEXEC)
    while data:
        data = data[os.write(fd, data) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def spawn(rank: dict[str, Any], nodes: list[str]) -> int:
    """Start the chain with stdin = the environment, stdout+stderr = the rank's output."""
    directory, argv = str(rank["dir"]), [str(a) for a in rank["argv"]]
    with open(os.path.join(directory, "exit"), "wb") as f:
        f.write(EXIT_PLACEHOLDER)
    env = env_fd(str(rank["env"]), nodes)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    out = os.open(str(rank["output"]), flags, 0o640)
    try:
        os.chdir(directory)  # OPEN_STAGE opens the rank's files relative to its cwd
        return os.posix_spawn(
            argv[0], argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            file_actions=[(os.POSIX_SPAWN_DUP2, env, 0), (os.POSIX_SPAWN_DUP2, out, 1),
                          (os.POSIX_SPAWN_DUP2, out, 2)],
            setsigdef=(signal.SIGTERM, signal.SIGALRM),
        )  # fmt: skip
    finally:
        os.close(env)
        os.close(out)


def run(launch: dict[str, Any], rank: int, nodes: list[str]) -> int:
    spec = launch["ranks"][rank]
    directory = str(spec["dir"])
    before = oom_kills()
    try:
        pid = spawn(spec, nodes)
    except OSError as exc:
        write(os.path.join(directory, "launch-error"), f"cannot start the rank: {exc}\n")
        write(os.path.join(directory, "exit"), f"{LAUNCH_FAILED_EXIT_CODE}\n")
        write(os.path.join(directory, "done"), "")
        return LAUNCH_FAILED_EXIT_CODE
    write(os.path.join(directory, "started"), f"{time.time():.6f}\n")
    grace = float(launch.get("stop_grace_seconds", 0.1))

    def on_stop(signum: int, frame: object) -> None:
        kill_init(pid, only_if_default=True)
        # What SIGTERM did not end is killed once the grace is over (its PID 1 first: that
        # ends every process of the rank's namespace).
        signal.signal(signal.SIGALRM, lambda *_: kill_init(pid, only_if_default=False))
        signal.setitimer(signal.ITIMER_REAL, max(grace, 0.001))

    signal.signal(signal.SIGTERM, on_stop)
    wait(pid, os.path.join(str(launch["state_dir"]), RANKS_STOP), on_stop)
    # The shim recorded the rank's exit status in its exit file.
    if oom_kills() > before:
        write(os.path.join(directory, "oom"), "")
    write(os.path.join(directory, "done"), "")
    try:
        with open(os.path.join(directory, "exit")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return LAUNCH_FAILED_EXIT_CODE


def wait(pid: int, stop_file: str, on_stop: Any) -> None:
    """Until the shim ends; meanwhile a stop of the other ranks (``stop_file``, from the
    launcher once a rank failed: a file, since the ranks may be on other nodes) is a stop."""
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    stopping = False
    try:
        while not poller.poll(STOP_POLL_MS):
            if not stopping and os.path.exists(stop_file):
                stopping = True
                on_stop(signal.SIGTERM, None)
    finally:
        os.close(pidfd)
    os.waitpid(pid, 0)


def main(argv: list[str]) -> int:
    state_dir, rank = argv[1], int(argv[2])
    # Slurm signals every process of the step: this one must outlive a stop's SIGTERM to
    # record how the rank ended (SIGKILL still ends it; the server then asks Slurm).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with open(os.path.join(state_dir, "launch.json")) as f:
        launch = json.load(f)
    for path in launch["mount_points"]:
        os.makedirs(path, mode=0o755, exist_ok=True)
    nodes = [n for n in os.environ.get(NODES_ENV, "").split(",") if n]
    if not nodes:  # a one-rank job's step is the batch step: no launcher ran before it
        nodes = [os.environ.get("SLURMD_NODENAME") or os.uname().nodename]
        write_node_files(state_dir, nodes)
    return run(launch, rank, nodes)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
