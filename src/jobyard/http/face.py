"""What the HTTPS face works with, and the scoped job lookups every endpoint uses.

The face holds no job logic: lookups, lists, stops, extensions, watches and output come
from the engine, scoped to the caller (the same calls the gRPC servicers make); which role
may do what is :func:`jobyard.domain.access.authorize`'s to say.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Protocol

from jobyard.accounting.sqlite import SQLiteLedger
from jobyard.domain.access import Identity, authorize
from jobyard.domain.jobs import Job, JobSpec
from jobyard.engine import JobEngine
from jobyard.engine.workflows import WorkflowRunner
from jobyard.http.models import JobSpecification
from jobyard.metrics import Metrics
from jobyard.store.tokens import SQLiteTokens
from jobyard.store.ucloud_specs import SQLiteUcloudSpecs

Json = dict[str, Any]


class Planner(Protocol):
    """Turns a UCloud JobSpecification into a native one (catalog, invocation, product)."""

    def plan(self, request: JobSpecification) -> JobSpec:
        """The native spec; InvalidArgument (400) for an unknown product or application,
        bad parameters or a backend jobyard cannot run."""
        ...

    def resolved(self, stored: Json | None) -> Json:
        """``resolvedApplication``/``resolvedProduct`` of a stored specification."""
        ...

    def products(self) -> Json:
        """``retrieveProducts``' answer: ``{"productsByProvider": {provider: [...]}}``."""
        ...


class SlowClients:
    """How many WebSocket clients were dropped for not reading (for logs and operators);
    :meth:`wait_for` lets a caller await a count without polling."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    async def wait_for(self, count: int) -> None:
        while self.count < count:
            await self._changed.wait()


@dataclasses.dataclass
class HttpFace:
    engine: JobEngine
    tokens: SQLiteTokens
    specs: SQLiteUcloudSpecs
    planner: Planner
    ledger: SQLiteLedger | None = None  # wallets, as the engine's charger keeps them
    slow_clients: SlowClients = dataclasses.field(default_factory=SlowClients)
    metrics: Metrics = dataclasses.field(default_factory=Metrics)  # the server's registry
    workflows: WorkflowRunner | None = None  # the dashboard's workflow view

    def job(self, identity: Identity, ref: str, operation: str) -> Job:
        """The job ``ref`` names, if ``identity`` may perform ``operation`` on it; a job it
        may not see is NotFound, exactly as an absent one."""
        authorize(identity, operation)
        return self.engine.job(identity, ref)
