"""Job networks on the host: a Linux bridge per created network, a network namespace per
job that joins one (or runs ``isolated``), a veth pair between them.

::

    bridge jyb<hash>        one per created network; no address of its own, so the host
                            routes nothing to or from it and networks never reach each other
    netns  jy-<tag>-<job id>  /run/netns/...: lo up, and for a created network eth0 (the
                            veth's job end) with the job's address from the CIDR and only the
                            connected route: the job reaches its network's jobs, nothing else
    veth   jyv<hash>        the host end, a port of the bridge

``tag`` stands for the server's data directory (and the bridge hash covers it too): several
servers on one host never take, or clean up, each other's namespaces and bridges.

Jobs cannot change any of this: they run without capabilities. The kernel state is the record
of which job holds which address: :meth:`HostNetworks.leases` reads it back after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import subprocess
from pathlib import Path

from jobyard.domain.errors import JobyardError
from jobyard.engine.volumes import COMMAND_TIMEOUT_SECONDS

log = logging.getLogger("jobyard.networks")

NETNS_DIR = Path("/run/netns")
NETNS_PREFIX = "jy-"
JOB_INTERFACE = "eth0"


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _veth_name(job_id: str) -> str:
    return "jyv" + _hash(job_id)[:10]  # job ids are UUIDs: unique across servers too


class HostNetworks:
    def __init__(self, data_dir: Path) -> None:
        self._data_dir = str(data_dir.resolve())
        self._prefix = f"{NETNS_PREFIX}{_hash(self._data_dir)[:8]}-"

    def bridge_name(self, network: str) -> str:
        """An interface name (at most 15 bytes) of this server's network ``network``."""
        return "jyb" + _hash(self._data_dir, network)[:10]

    def netns_name(self, job_id: str) -> str:
        return self._prefix + job_id

    def netns_path(self, job_id: str) -> str:
        return str(NETNS_DIR / self.netns_name(job_id))

    async def create_bridge(self, bridge: str) -> None:
        await _ip("link", "add", bridge, "type", "bridge")
        try:
            await _ip("link", "set", bridge, "up")
        except BaseException:
            await _ip("link", "del", bridge)
            raise

    async def ensure_bridge(self, bridge: str) -> None:
        """Make a stored network's bridge again (after a reboot); idempotent."""
        if not await _exists(bridge):
            await self.create_bridge(bridge)

    async def remove_bridge(self, bridge: str) -> None:
        if await _exists(bridge):
            await _ip("link", "del", bridge)

    async def isolate(self, job_id: str) -> str:
        """A namespace of the job's own with only loopback; its path."""
        name = self.netns_name(job_id)
        await _ip("netns", "add", name)
        await _ip("-n", name, "link", "set", "lo", "up")
        return self.netns_path(job_id)

    async def join(self, job_id: str, bridge: str, address: ipaddress.IPv4Interface) -> str:
        """A namespace for the job on ``bridge`` at ``address``; its path.

        Two ``ip -batch`` runs (the host's side, then the namespace's): each ``ip`` process
        costs milliseconds, the changes themselves microseconds.
        """
        name, veth = self.netns_name(job_id), _veth_name(job_id)
        try:
            await _ip_batch(
                (),
                [
                    f"netns add {name}",
                    f"link add {veth} type veth peer name {JOB_INTERFACE} netns {name}",
                    f"link set {veth} master {bridge} up",
                ],
            )
            await _ip_batch(
                ("-n", name),
                [
                    "link set lo up",
                    f"addr add {address} dev {JOB_INTERFACE}",
                    f"link set {JOB_INTERFACE} up",
                ],
            )
        except BaseException:
            await self.leave(job_id)
            raise
        return self.netns_path(job_id)

    async def leave(self, job_id: str) -> None:
        """Remove the job's namespace (its veth pair goes with it); idempotent."""
        if (NETNS_DIR / self.netns_name(job_id)).exists():
            await _ip("netns", "del", self.netns_name(job_id))
        # The kernel drops the pair with the namespace, a moment later; a namespace kept alive
        # by a straggling process keeps it: take the host end down for sure (gone is fine).
        await _ip("link", "del", _veth_name(job_id), check=False)

    async def leases(self) -> dict[str, ipaddress.IPv4Interface | None]:
        """Every job namespace of this server: job id -> its address (None: isolated)."""
        if not NETNS_DIR.is_dir():
            return {}
        out: dict[str, ipaddress.IPv4Interface | None] = {}
        for entry in NETNS_DIR.iterdir():
            if not entry.name.startswith(self._prefix):
                continue
            raw = await _ip("-n", entry.name, "-j", "-4", "addr", "show", "dev", JOB_INTERFACE,
                            check=False)  # fmt: skip
            addresses = [
                ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
                for link in json.loads(raw or "[]")
                for a in link.get("addr_info", [])
            ]
            out[entry.name.removeprefix(self._prefix)] = addresses[0] if addresses else None
        return out


async def _exists(interface: str) -> bool:
    return bool(await _ip("-j", "link", "show", interface, check=False))


async def _ip_batch(options: tuple[str, ...], commands: list[str]) -> None:
    """Several ``ip`` commands in one process (names and addresses are ours: no blanks)."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", *options, "-batch", "-"], input="\n".join(commands) + "\n",
                              capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_SECONDS)  # fmt: skip

    try:
        done = await asyncio.to_thread(run)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobyardError(f"ip -batch failed: {exc}") from exc
    if done.returncode != 0:
        raise JobyardError(f"ip -batch failed: {done.stderr.strip()}")


async def _ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; its output ("" when it failed and ``check`` is False)."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", *args], capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_SECONDS)  # fmt: skip

    try:
        done = await asyncio.to_thread(run)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobyardError(f"ip {' '.join(args)} failed: {exc}") from exc
    if done.returncode != 0:
        if not check:
            return ""
        raise JobyardError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
