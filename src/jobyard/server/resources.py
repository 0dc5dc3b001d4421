"""joblet.VolumeService, RuntimeService and NetworkService: translation to the registry."""

from __future__ import annotations

import contextlib
import platform
from typing import Any

from jobyard.api.gen import joblet_pb2 as pb
from jobyard.api.gen import joblet_pb2_grpc as pb_grpc
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import rfc3339
from jobyard.domain.resources import VOLUMES_DIR, RuntimeInfo, Volume, format_size
from jobyard.engine.jobs import JobEngine
from jobyard.engine.resources import Registry
from jobyard.engine.runtimes import test_in_job
from jobyard.server.auth import current_identity


def volume_to_proto(volume: Volume, job_count: int = 0) -> pb.Volume:
    return pb.Volume(
        name=volume.name, size=format_size(volume.size_bytes), type=volume.type,
        path=f"{VOLUMES_DIR}/{volume.name}", createdTime=rfc3339(volume.created_at),
        jobCount=job_count, owner=volume.owner,
    )  # fmt: skip


def runtime_to_proto(info: RuntimeInfo) -> pb.RuntimeInfo:
    return pb.RuntimeInfo(
        name=info.name, language=info.language, version=info.version,
        description=info.description, sizeBytes=info.size_bytes, packages=list(info.packages),
        available=True,
        requirements=pb.RuntimeRequirements(architectures=[platform.machine()], gpu=False),
    )  # fmt: skip


class VolumeServicer(pb_grpc.VolumeServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def CreateVolume(self, request: pb.CreateVolumeReq, context: Any) -> pb.CreateVolumeRes:
        volume = await self._registry.create_volume(
            current_identity(), request.name, request.size, request.type
        )
        msg = volume_to_proto(volume)
        return pb.CreateVolumeRes(name=msg.name, size=msg.size, type=msg.type, path=msg.path)

    async def ListVolumes(self, request: pb.EmptyRequest, context: Any) -> pb.Volumes:
        users = self._registry.users()
        return pb.Volumes(
            volumes=[
                volume_to_proto(v, users[f"volume:{v.name}"])
                for v in self._registry.volumes(current_identity())
            ]
        )

    async def RemoveVolume(self, request: pb.RemoveVolumeReq, context: Any) -> pb.RemoveVolumeRes:
        volume = await self._registry.remove_volume(current_identity(), request.name)
        return pb.RemoveVolumeRes(success=True, message=f"volume {volume.name} removed")


class RuntimeServicer(pb_grpc.RuntimeServiceServicer):
    def __init__(self, registry: Registry, engine: JobEngine) -> None:
        self._registry = registry
        self._engine = engine

    async def InstallRuntime(
        self, request: pb.InstallRuntimeRequest, context: Any
    ) -> pb.InstallRuntimeResponse:
        if request.repository or request.branch:
            raise InvalidArgument(
                "installing a runtime from a repository is not supported: give the path of "
                "its directory on the server"
            )
        if not request.path:
            raise InvalidArgument("invalid path '': give the runtime's directory on the server")
        if request.forceReinstall:
            with contextlib.suppress(NotFound):
                await self._registry.remove_runtime(request.runtimeSpec)
        info = await self._registry.install_runtime(request.runtimeSpec, request.path)
        return pb.InstallRuntimeResponse(
            runtimeSpec=info.name, status="INSTALLED", resolvedPath=request.path,
            message=f"runtime {info.name} installed ({format_size(info.size_bytes)})",
        )  # fmt: skip

    async def ListRuntimes(self, request: pb.EmptyRequest, context: Any) -> pb.RuntimesRes:
        return pb.RuntimesRes(runtimes=[runtime_to_proto(r) for r in self._registry.runtimes()])

    async def GetRuntimeInfo(self, request: pb.RuntimeInfoReq, context: Any) -> pb.RuntimeInfoRes:
        try:
            info = self._registry.runtime(request.runtime)
        except NotFound:
            return pb.RuntimeInfoRes(found=False)
        return pb.RuntimeInfoRes(runtime=runtime_to_proto(info), found=True)

    async def TestRuntime(self, request: pb.RuntimeTestReq, context: Any) -> pb.RuntimeTestRes:
        info = self._registry.runtime(request.runtime)
        result = await test_in_job(self._engine, current_identity(), info)
        failed = f"runtime {info.name} failed its test (exit {result.exit_code}, "
        error = "" if result.success else f"{failed}job {result.job_id})"
        return pb.RuntimeTestRes(
            success=result.success, output=result.output, error=error, exitCode=result.exit_code
        )

    async def RemoveRuntime(
        self, request: pb.RuntimeRemoveReq, context: Any
    ) -> pb.RuntimeRemoveRes:
        info = await self._registry.remove_runtime(request.runtime)
        return pb.RuntimeRemoveRes(
            success=True, message=f"runtime {info.name} removed", freedSpaceBytes=info.size_bytes
        )


class NetworkServicer(pb_grpc.NetworkServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def CreateNetwork(
        self, request: pb.CreateNetworkReq, context: Any
    ) -> pb.CreateNetworkRes:
        network = await self._registry.create_network(
            current_identity(), request.name, request.cidr
        )
        return pb.CreateNetworkRes(name=network.name, cidr=network.cidr, bridge=network.bridge)

    async def ListNetworks(self, request: pb.EmptyRequest, context: Any) -> pb.Networks:
        users = self._registry.users()
        return pb.Networks(
            networks=[
                pb.Network(
                    name=n.name,
                    cidr=n.cidr,
                    bridge=n.bridge,
                    owner=n.owner,
                    jobCount=users[f"network:{n.name}"],
                )
                for n in self._registry.networks(current_identity())
            ]
        )

    async def RemoveNetwork(
        self, request: pb.RemoveNetworkReq, context: Any
    ) -> pb.RemoveNetworkRes:
        network = await self._registry.remove_network(current_identity(), request.name)
        return pb.RemoveNetworkRes(success=True, message=f"network {network.name} removed")
