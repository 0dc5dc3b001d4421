"""Prometheus metrics of one server, in a registry of its own (no global singletons).

What is measured, and where:

- ``jobyard_jobs{status}`` and ``jobyard_queue_depth``: read from the store at each scrape;
- ``jobyard_launch_latency_seconds{backend}``: from a job's last QUEUED entry (when it could
  run: its submission, or its scheduled time) to its first RUNNING one;
- ``jobyard_end_latency_seconds{status}``: from the stop request (STOPPING) or the
  processes' end as the backend recorded it to the job's end being recorded;
- ``jobyard_submit_latency_seconds{face}``: an accepted submit call, request to reply;
- ``jobyard_output_bytes_total``: output written by jobs (ended jobs as they end, plus the
  output so far of the active ones at each scrape; counts from this server's start);
- ``jobyard_followers{kind}``: output followers, and dashboard/WebSocket connections;
- ``jobyard_store_commit_seconds``: each SQLite COMMIT (the durable write);
- ``jobyard_requests_total{face,method,code}``: every gRPC call and HTTP request answered.

Job changes arrive through :meth:`JobEvents.observe` (synchronous, on the event loop).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobyard.domain.jobs import Job, utcnow
from jobyard.domain.status import ACTIVE, Status

if TYPE_CHECKING:
    from jobyard.engine import JobEngine
    from jobyard.logs import JobLayout, LogHub
    from jobyard.store import SQLiteStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
COMMIT_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
REMEMBERED_JOBS = 10_000  # ids whose launch/end was counted, so that none counts twice


class Metrics:
    """The server's metrics; :meth:`bind` attaches the engine's store, events and logs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("jobyard_requests", "Requests answered, by face, method and code",
                                ["face", "method", "code"], registry=r)  # fmt: skip
        self.submit_seconds = Histogram("jobyard_submit_latency_seconds",
                                        "Submit calls, from request to reply", ["face"],
                                        buckets=LATENCY_BUCKETS_SECONDS, registry=r)  # fmt: skip
        self.launch_seconds = Histogram("jobyard_launch_latency_seconds",
                                        "From a job's last QUEUED to its first RUNNING",
                                        ["backend"], buckets=LATENCY_BUCKETS_SECONDS,
                                        registry=r)  # fmt: skip
        self.end_seconds = Histogram("jobyard_end_latency_seconds",
                                     "From a stop request or the processes' end to the "
                                     "job's end recorded", ["status"],
                                     buckets=LATENCY_BUCKETS_SECONDS, registry=r)  # fmt: skip
        self.commit_seconds = Histogram("jobyard_store_commit_seconds", "SQLite COMMITs",
                                        buckets=COMMIT_BUCKETS_SECONDS, registry=r)  # fmt: skip
        self.connections = Gauge("jobyard_http_connections",
                                 "Open WebSocket connections, by kind", ["kind"],
                                 registry=r)  # fmt: skip
        self._counted = _JobCounts()

    def bind(self, engine: JobEngine, store: SQLiteStore, hub: LogHub) -> None:
        """Observe ``engine``'s jobs, ``store``'s commits and ``hub``'s followers."""
        engine.events.observe(self._counted.observer(self, engine.layout))
        connection = store.connection
        if hasattr(connection, "on_commit"):
            connection.on_commit = self.commit_seconds.observe
        self.registry.register(_LiveCollector(store, hub, engine.layout, self._counted))

    def request(self, face: str, method: str, code: str, seconds: float, submit: bool) -> None:
        """One answered request (``submit``: a job submission that was accepted; refusals
        are counted, not timed)."""
        self.requests.labels(face, method, code).inc()
        if submit:
            self.submit_seconds.labels(face).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class _JobCounts:
    """Which jobs' launch and end were counted, and the output of the ended ones. Only
    what happens in this server's lifetime counts: a job adopted after a restart, already
    running, adds no launch latency of hours."""

    def __init__(self) -> None:
        self.since = utcnow()
        self.ended_output_bytes = 0
        self._launched: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()

    def observer(self, metrics: Metrics, layout: JobLayout) -> _Observer:
        return _Observer(metrics, layout, self)

    def first(self, seen: collections.OrderedDict[str, None], job_id: str) -> bool:
        """True the first time ``job_id`` is offered to ``seen`` (bounded memory)."""
        if job_id in seen:
            return False
        seen[job_id] = None
        if len(seen) > REMEMBERED_JOBS:
            seen.popitem(last=False)
        return True


class _Observer:
    def __init__(self, metrics: Metrics, layout: JobLayout, counts: _JobCounts) -> None:
        self._metrics = metrics
        self._layout = layout
        self._counts = counts

    def __call__(self, job: Job) -> None:
        counts = self._counts
        if job.status is Status.RUNNING and counts.first(counts._launched, job.id):
            since = _last(job, Status.QUEUED) or job.created_at
            running = _last(job, Status.RUNNING)
            if running is not None and running >= counts.since:
                seconds = _seconds(since, running)
                self._metrics.launch_seconds.labels(job.backend).observe(seconds)
        if job.status.terminal and counts.first(counts._ended, job.id):
            counts._launched.pop(job.id, None)
            counts.ended_output_bytes += sum(self._layout.output_sizes(job.id))
            began = _last(job, Status.STOPPING) or job.ended_at
            ended = job.updates[-1].timestamp if job.updates else None
            if began is not None and ended is not None and ended >= counts.since:
                seconds = _seconds(began, ended)
                self._metrics.end_seconds.labels(job.status.value).observe(seconds)


class _LiveCollector(Collector):
    """What is read at each scrape: jobs by status, the queue, output so far, followers."""

    def __init__(
        self, store: SQLiteStore, hub: LogHub, layout: JobLayout, counts: _JobCounts
    ) -> None:
        self._store = store
        self._hub = hub
        self._layout = layout
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self._store.count_by_status()
        jobs = GaugeMetricFamily("jobyard_jobs", "Jobs by status", labels=["status"])
        for status, count in counts.items():
            jobs.add_metric([status.value], count)
        yield jobs
        yield GaugeMetricFamily("jobyard_queue_depth", "Jobs waiting for capacity (QUEUED)",
                                value=counts[Status.QUEUED])  # fmt: skip
        active = self._store.list(ACTIVE)
        written = self._counts.ended_output_bytes + sum(
            sum(self._layout.output_sizes(job.id)) for job in active
        )
        yield CounterMetricFamily("jobyard_output_bytes", "Output bytes written by jobs",
                                  value=written)  # fmt: skip
        yield GaugeMetricFamily("jobyard_followers", "Readers following job output now",
                                value=self._hub.followers)  # fmt: skip


def _last(job: Job, status: Status) -> datetime | None:
    for entry in reversed(job.updates):
        if entry.status is status:
            return entry.timestamp
    return None


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


__all__ = ["CONTENT_TYPE", "Metrics"]
