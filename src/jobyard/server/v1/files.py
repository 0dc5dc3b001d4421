"""jobyard.v1 RPCs: files of a job's work directory (JuliaHub ``job_files``, ``FileHash``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.domain.jobs import rfc3339
from jobyard.engine import JobEngine
from jobyard.server.auth import current_identity


class FileRpcs:
    _engine: JobEngine

    async def ListFiles(self, request: v1.JobRef, context: Any) -> v1.ListFilesResponse:
        files = await self._engine.list_files(current_identity(), request.id)
        return v1.ListFilesResponse(
            files=[
                v1.FileInfo(path=f.path, size=f.size, sha256=f.sha256, modified=rfc3339(f.modified))
                for f in files
            ]
        )

    async def DownloadFile(
        self, request: v1.DownloadFileRequest, context: Any
    ) -> AsyncIterator[v1.FileChunk]:
        chunks = self._engine.download(current_identity(), request.id, request.path)
        async for offset, data in chunks:
            yield v1.FileChunk(offset=offset, data=data)
