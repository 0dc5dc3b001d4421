"""The registry of volumes, runtimes and networks: records in SQLite, storage and devices on
the host, and the :class:`~jobyard.engine.attachments.Attachments` the engine asks about every
job."""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import socket
from pathlib import Path

import psutil

from jobyard.domain.access import Identity, visible
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from jobyard.domain.jobs import NETWORK_ISOLATED, NETWORKS, Job, JobSpec, utcnow
from jobyard.domain.resources import (
    RUNTIME_DIR,
    VOLUME_TYPES,
    VOLUMES_DIR,
    Network,
    RuntimeInfo,
    Volume,
    check_name,
    job_addresses,
    network_not_found,
    parse_cidr,
    parse_size,
    runtime_not_found,
    volume_not_found,
)
from jobyard.domain.status import TERMINAL, Status
from jobyard.engine.attachments import Attached
from jobyard.engine.networks import HostNetworks
from jobyard.engine.runtimes import HostRuntimes
from jobyard.engine.volumes import HostVolumes
from jobyard.runtime.base import Bind
from jobyard.store.base import JobQuery, Store
from jobyard.store.resources import SQLiteResourceStore

log = logging.getLogger("jobyard.resources")

UNFINISHED = frozenset(Status) - TERMINAL
MAX_LISTED_JOBS = 100_000


class Registry:
    def __init__(
        self,
        store: SQLiteResourceStore,
        jobs: Store,
        volumes: HostVolumes,
        runtimes: HostRuntimes,
        max_volume_bytes: int,
        networks: HostNetworks,
    ) -> None:
        self._store, self._jobs = store, jobs
        self.host_volumes, self.host_runtimes = volumes, runtimes
        self.host_networks = networks
        self._max_volume_bytes = max_volume_bytes
        self._lock = asyncio.Lock()  # creations and removals, one at a time
        # Jobs holding a namespace of ours, with their address on a created network.
        self._leases: dict[str, ipaddress.IPv4Interface | None] = {}

    async def start(self) -> None:
        """Mount every stored volume again (a restart, a reboot), make every network's
        bridge, and take back the namespaces of jobs that still run."""
        for volume in self._store.volumes():
            await asyncio.to_thread(self.host_volumes.ensure_mounted, volume)
        for network in self._store.networks():
            await self.host_networks.ensure_bridge(network.bridge)
        unfinished = {job.id for job in self._unfinished()}
        for job_id, address in (await self.host_networks.leases()).items():
            if job_id in unfinished:
                self._leases[job_id] = address
            else:
                await self.host_networks.leave(job_id)

    # -- what jobs attach ------------------------------------------------------------------

    def check(self, spec: JobSpec, caller: Identity | None) -> None:
        for name in spec.volumes:
            self.volume(name, caller)
        if spec.runtime_env:
            self.runtime(spec.runtime_env)
        if spec.network not in NETWORKS:
            self.network(spec.network, caller)

    async def attach(self, job_id: str, spec: JobSpec) -> Attached:
        self.check(spec, None)
        binds = [
            Bind(self.host_volumes.mount_point(name), f"{VOLUMES_DIR}/{name}", read_only=False)
            for name in spec.volumes
        ]
        path: tuple[str, ...] = ()
        if spec.runtime_env:
            tree = self.host_runtimes.tree(spec.runtime_env)
            binds.append(Bind(tree, RUNTIME_DIR, read_only=True))
            path = (f"{RUNTIME_DIR}/bin",)
        return Attached(tuple(binds), path, await self._netns(job_id, spec.network))

    async def _netns(self, job_id: str, mode: str) -> str:
        if mode == NETWORK_ISOLATED:
            self._leases[job_id] = None
            return await self.host_networks.isolate(job_id)
        if mode in NETWORKS:
            return ""  # host, or none: the runtime's own new namespace
        network = self.network(mode, None)
        taken = {a for a in self._leases.values() if a is not None}
        address = next((a for a in job_addresses(ipaddress.IPv4Network(network.cidr))
                        if a not in taken), None)  # fmt: skip
        if address is None:
            raise ResourceExhausted(f"network {mode} has no free address left ({network.cidr})")
        self._leases[job_id] = address  # before any await: no second job gets it
        return await self.host_networks.join(job_id, network.bridge, address)

    async def release(self, job_id: str) -> None:
        if job_id in self._leases:
            await self.host_networks.leave(job_id)
            self._leases.pop(job_id, None)

    def _unfinished(self) -> list[Job]:
        jobs, _ = self._jobs.query(JobQuery(statuses=UNFINISHED, page_size=MAX_LISTED_JOBS))
        return jobs

    def users(self) -> collections.Counter[str]:
        """Unfinished jobs per volume, runtime and network name."""
        count: collections.Counter[str] = collections.Counter()
        for job in self._unfinished():
            count.update(f"volume:{v}" for v in job.spec.volumes)
            if job.spec.runtime_env:
                count[f"runtime:{job.spec.runtime_env}"] += 1
            if job.spec.network not in NETWORKS:
                count[f"network:{job.spec.network}"] += 1
        return count

    # -- volumes -----------------------------------------------------------------------------

    def volume(self, name: str, caller: Identity | None) -> Volume:
        """The volume, if ``caller`` may use it (None: anyone); else NotFound, as if absent."""
        for volume in self._store.volumes():
            if volume.name == name and (caller is None or visible(caller, volume)):
                return volume
        raise volume_not_found(name)

    def volumes(self, caller: Identity) -> list[Volume]:
        return [v for v in self._store.volumes() if visible(caller, v)]

    async def create_volume(self, caller: Identity, name: str, size: str, kind: str) -> Volume:
        check_name("volume", name)
        kind = kind or VOLUME_TYPES[0]
        if kind not in VOLUME_TYPES:
            raise InvalidArgument(f"invalid volume type {kind!r}: use {' or '.join(VOLUME_TYPES)}")
        volume = Volume(name, caller.name, caller.project, kind,
                        parse_size(size, self._max_volume_bytes), utcnow())  # fmt: skip
        async with self._lock:
            self._store.add_volume(volume)  # first: the name is taken once, by one caller
            try:
                await self.host_volumes.create(volume)
            except BaseException:
                self._store.remove_volume(name)
                raise
        return volume

    async def remove_volume(self, caller: Identity, name: str) -> Volume:
        async with self._lock:
            volume = self.volume(name, caller)
            using = self.users()[f"volume:{name}"]
            if using:
                raise FailedPrecondition(f"volume {name} is in use by {using} unfinished job(s)")
            await self.host_volumes.remove(volume)
            self._store.remove_volume(name)
        return volume

    # -- runtimes ----------------------------------------------------------------------------

    def runtime(self, name: str) -> RuntimeInfo:
        for info in self._store.runtimes():
            if info.name == name:
                return info
        raise runtime_not_found(name)

    def runtimes(self) -> list[RuntimeInfo]:
        return self._store.runtimes()

    async def install_runtime(self, name: str, path: str) -> RuntimeInfo:
        check_name("runtime", name)
        async with self._lock:
            if any(r.name == name for r in self._store.runtimes()):
                raise FailedPrecondition(f"runtime {name} is installed already")
            info = await self.host_runtimes.install(name, Path(path))
            self._store.add_runtime(info)
        return info

    async def remove_runtime(self, name: str) -> RuntimeInfo:
        async with self._lock:
            info = self.runtime(name)
            using = self.users()[f"runtime:{name}"]
            if using:
                raise FailedPrecondition(f"runtime {name} is in use by {using} unfinished job(s)")
            self._store.remove_runtime(name)
            await self.host_runtimes.remove(name)
        return info

    # -- networks ----------------------------------------------------------------------------

    def network(self, name: str, caller: Identity | None) -> Network:
        """The network, if ``caller`` may use it (None: anyone); else NotFound."""
        for network in self._store.networks():
            if network.name == name and (caller is None or visible(caller, network)):
                return network
        raise network_not_found(name)

    def networks(self, caller: Identity) -> list[Network]:
        return [n for n in self._store.networks() if visible(caller, n)]

    async def create_network(self, caller: Identity, name: str, cidr: str) -> Network:
        check_name("network", name)
        if name in NETWORKS:
            raise InvalidArgument(f"invalid network name {name!r}: it names a network mode")
        subnet = parse_cidr(cidr)
        for other in self._store.networks():
            if subnet.overlaps(ipaddress.IPv4Network(other.cidr)):
                raise InvalidArgument(f"invalid cidr {cidr}: overlaps network {other.name}")
        for host in await asyncio.to_thread(host_networks_in_use):
            if subnet.overlaps(host):
                raise InvalidArgument(f"invalid cidr {cidr}: overlaps {host} on this host")
        bridge = self.host_networks.bridge_name(name)
        network = Network(name, caller.name, caller.project, str(subnet), bridge, utcnow())
        async with self._lock:
            self._store.add_network(network)
            try:
                await self.host_networks.create_bridge(network.bridge)
            except BaseException:
                self._store.remove_network(name)
                raise
        log.info("network created | network=%s cidr=%s bridge=%s owner=%s",
                 name, network.cidr, network.bridge, caller.name)  # fmt: skip
        return network

    async def remove_network(self, caller: Identity, name: str) -> Network:
        async with self._lock:
            network = self.network(name, caller)
            using = self.users()[f"network:{name}"]
            if using:
                raise FailedPrecondition(f"network {name} is in use by {using} unfinished job(s)")
            await self.host_networks.remove_bridge(network.bridge)
            self._store.remove_network(name)
        return network


def host_networks_in_use() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of this host's interfaces (a job network must not shadow one)."""
    out = []
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and a.netmask:
                out.append(ipaddress.IPv4Network(f"{a.address}/{a.netmask}", strict=False))
    return out
