"""The SDK's volume, network and runtime methods (joblet.VolumeService, NetworkService,
RuntimeService)."""

from __future__ import annotations

import dataclasses
import os

from jobyard.api.gen import joblet_pb2, joblet_pb2_grpc
from jobyard.client.base import Connected


@dataclasses.dataclass(frozen=True, slots=True)
class VolumeInfo:
    name: str
    size: str  # e.g. "1GB"
    type: str  # filesystem or memory
    path: str  # where jobs see it: /volumes/NAME
    created_time: str = ""
    job_count: int = 0  # unfinished jobs that name it
    owner: str = ""

    @classmethod
    def from_proto(cls, msg: joblet_pb2.Volume) -> VolumeInfo:
        return cls(msg.name, msg.size, msg.type, msg.path, msg.createdTime, msg.jobCount,
                   msg.owner)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class NetworkInfo:
    name: str
    cidr: str
    bridge: str
    job_count: int = 0  # unfinished jobs on it
    owner: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeDescription:
    name: str
    language: str
    version: str
    description: str
    size_bytes: int
    packages: tuple[str, ...]
    available: bool

    @classmethod
    def from_proto(cls, msg: joblet_pb2.RuntimeInfo) -> RuntimeDescription:
        return cls(msg.name, msg.language, msg.version, msg.description, msg.sizeBytes,
                   tuple(msg.packages), msg.available)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeTest:
    success: bool
    output: str
    error: str
    exit_code: int


class ResourceMethods(Connected):
    @property
    def _volumes(self) -> joblet_pb2_grpc.VolumeServiceStub:
        return joblet_pb2_grpc.VolumeServiceStub(self._channel)

    @property
    def _runtimes(self) -> joblet_pb2_grpc.RuntimeServiceStub:
        return joblet_pb2_grpc.RuntimeServiceStub(self._channel)

    def create_volume(self, name: str, size: str, type: str = "filesystem") -> VolumeInfo:
        """A volume of ``size`` ("500MB", "1GB"): an ext4 image (filesystem) or a tmpfs
        (memory), for the caller's jobs that name it (``submit(volumes=[name])``)."""
        request = joblet_pb2.CreateVolumeReq(name=name, size=size, type=type)
        res = self._unary(self._volumes.CreateVolume, request)
        return VolumeInfo(res.name, res.size, res.type, res.path)

    def volumes(self) -> list[VolumeInfo]:
        res = self._unary(self._volumes.ListVolumes, joblet_pb2.EmptyRequest())
        return [VolumeInfo.from_proto(v) for v in res.volumes]

    def remove_volume(self, name: str) -> str:
        res = self._unary(self._volumes.RemoveVolume, joblet_pb2.RemoveVolumeReq(name=name))
        return str(res.message)

    @property
    def _networks(self) -> joblet_pb2_grpc.NetworkServiceStub:
        return joblet_pb2_grpc.NetworkServiceStub(self._channel)

    def create_network(self, name: str, cidr: str) -> NetworkInfo:
        """A network (a private IPv4 range such as 10.10.0.0/24) whose jobs reach each other
        by address and nothing else (``submit(network=name)``)."""
        request = joblet_pb2.CreateNetworkReq(name=name, cidr=cidr)
        res = self._unary(self._networks.CreateNetwork, request)
        return NetworkInfo(res.name, res.cidr, res.bridge)

    def networks(self) -> list[NetworkInfo]:
        res = self._unary(self._networks.ListNetworks, joblet_pb2.EmptyRequest())
        return [NetworkInfo(n.name, n.cidr, n.bridge, n.jobCount, n.owner) for n in res.networks]

    def remove_network(self, name: str) -> str:
        request = joblet_pb2.RemoveNetworkReq(name=name)
        return str(self._unary(self._networks.RemoveNetwork, request).message)

    def install_runtime(
        self, name: str, path: str | os.PathLike[str], *, force: bool = False
    ) -> str:
        """Install the directory ``path`` *on the server* as runtime ``name`` (admin)."""
        request = joblet_pb2.InstallRuntimeRequest(
            runtimeSpec=name, path=os.fspath(path), forceReinstall=force
        )
        return str(self._unary(self._runtimes.InstallRuntime, request).message)

    def runtimes(self) -> list[RuntimeDescription]:
        res = self._unary(self._runtimes.ListRuntimes, joblet_pb2.EmptyRequest())
        return [RuntimeDescription.from_proto(r) for r in res.runtimes]

    def runtime(self, name: str) -> RuntimeDescription | None:
        res = self._unary(self._runtimes.GetRuntimeInfo, joblet_pb2.RuntimeInfoReq(runtime=name))
        return RuntimeDescription.from_proto(res.runtime) if res.found else None

    def test_runtime(self, name: str) -> RuntimeTest:
        res = self._unary(self._runtimes.TestRuntime, joblet_pb2.RuntimeTestReq(runtime=name))
        return RuntimeTest(res.success, res.output, res.error, res.exitCode)

    def remove_runtime(self, name: str) -> int:
        """Remove a runtime no unfinished job uses; returns the bytes freed."""
        request = joblet_pb2.RuntimeRemoveReq(runtime=name)
        return int(self._unary(self._runtimes.RemoveRuntime, request).freedSpaceBytes)
