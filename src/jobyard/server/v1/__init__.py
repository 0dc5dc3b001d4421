"""jobyard.v1.JobyardService: one servicer assembled from one mixin per area.

Each area module translates its RPCs to engine calls and nothing else; authorization and
error codes are the interceptor's (:mod:`jobyard.server.auth`).
"""

from __future__ import annotations

from jobyard.api.gen import jobyard_v1_pb2_grpc as pb_grpc
from jobyard.engine import JobEngine
from jobyard.engine.workflows import WorkflowRunner
from jobyard.server.v1.control import ControlRpcs
from jobyard.server.v1.files import FileRpcs
from jobyard.server.v1.jobs import JobRpcs
from jobyard.server.v1.logs import LogRpcs
from jobyard.server.workflows import WorkflowControlRpcs


class JobyardServicer(
    ControlRpcs, JobRpcs, LogRpcs, FileRpcs, WorkflowControlRpcs, pb_grpc.JobyardServiceServicer
):
    def __init__(self, engine: JobEngine, workflows: WorkflowRunner) -> None:
        self._engine = engine
        self._workflows = workflows


__all__ = ["JobyardServicer"]
