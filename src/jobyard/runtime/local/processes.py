"""Watching and signalling the processes of a job's ranks from the host.

Supervisors are watched through pidfds (an event when one ends, no polling); cgroup states
that have no event are polled with a growing delay. Nothing here holds per-job state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from jobyard.domain.errors import LaunchError
from jobyard.runtime.local.cgroups import JobCgroup

NETNS_TIMEOUT_SECONDS = 5.0  # how long rank 0 may take to create the ranks' network namespace


async def readable(*fds: int, timeout: float | None = None) -> bool:
    """Wait until any of ``fds`` (pidfds: their process ended) is readable, at most
    ``timeout``."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    for fd in fds:
        loop.add_reader(fd, on_readable)
    try:
        await asyncio.wait_for(ready, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        for fd in fds:
            loop.remove_reader(fd)


def ended(pidfd: int) -> bool:
    """Whether the process of ``pidfd`` has ended (its pidfd polls readable)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def reap(pidfd: int) -> None:
    # Only our own child can be reaped (by us, once); a shim an earlier server started
    # belongs to init. P_PIDFD reaps exactly this process, whatever its pid has become.
    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)


async def until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll a cgroup state (the freezer has no event on v1) until true or ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.001
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def first_child(pid: int) -> int | None:
    """The supervisor's one child: the job's PID 1, as the host numbers it."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # gone, or a kernel without CONFIG_PROC_CHILDREN
        return None
    return int(children[0]) if children else None


def pid_ns(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def lone_inits(inits: list[int], pids: list[int]) -> list[int]:
    """The ranks' PID 1s that are the last process of their pid namespace among ``pids``."""
    namespaces = {pid: pid_ns(pid) for pid in pids}
    crowd = Counter(namespaces.values())
    return [i for i in inits if i in namespaces and crowd[namespaces[i]] == 1]


def dies_of_sigterm(pid: int) -> bool:
    """Whether SIGTERM would end ``pid`` by default: neither caught, ignored nor blocked."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    bit = 1 << (signal.SIGTERM - 1)
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn", "SigCgt") and int(value, 16) & bit:
            return False
    return True


def end_lone_inits(supervisor_pids: list[int], cgroup: JobCgroup) -> None:
    """SIGKILL each rank's PID 1 that is alone in its namespace and has no SIGTERM handler.

    The kernel spares a namespace's PID 1 the signals it has no handler for; anywhere else
    SIGTERM would have ended it. Once it is alone (its children had their SIGTERM), end it
    as SIGTERM would have.
    """
    inits = [i for i in map(first_child, supervisor_pids) if i is not None]
    for init in lone_inits(inits, cgroup.pids()):
        if dies_of_sigterm(init):
            send_signal(init, signal.SIGKILL)


async def own_netns(pid: int) -> int:
    """Wait until ``pid`` (rank 0's supervisor) is in a network namespace of its own, so
    that the other ranks enter that one and never the host's; returns ``pid``."""
    host = os.stat("/proc/self/ns/net").st_ino

    def unshared() -> bool:
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino != host
        except OSError as exc:
            raise LaunchError(f"rank 0 ended before its network namespace existed: {exc}") from exc

    if not await until(unshared, NETNS_TIMEOUT_SECONDS):
        raise LaunchError(f"rank 0 had no network namespace after {NETNS_TIMEOUT_SECONDS:g} s")
    return pid


def send_signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
