"""From a UCloud JobSpecification to the native JobSpec: the catalog's product and
application, the invocation rendered to argv, the time allocation as the time limit."""

from __future__ import annotations

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec
from jobyard.http.face import Json
from jobyard.http.models import JobSpecification


class NoCatalog:
    """The planner of a server with no ``ucloud:`` section: nothing can be created."""

    def plan(self, request: JobSpecification) -> JobSpec:
        raise InvalidArgument(
            f"unknown application {request.application.name} {request.application.version}: "
            "this server has no ucloud applications configured"
        )

    def resolved(self, stored: Json | None) -> Json:
        return {}

    def products(self) -> Json:
        return {"productsByProvider": {}}
