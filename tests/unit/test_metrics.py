"""Metrics without a server: a registry per instance, latencies from job changes, jobs by
status and the queue from the store, commit timing, request counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from jobyard.domain.jobs import Job, JobSpec, StatusUpdate
from jobyard.domain.status import Status
from jobyard.logs import JobLayout
from jobyard.metrics import Metrics, _JobCounts, _Observer
from jobyard.store import SQLiteStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def job(job_id: str, *history: tuple[Status, float], **fields: object) -> Job:
    updates = tuple(StatusUpdate(T0 + timedelta(seconds=at), status, "") for status, at in history)
    return Job(id=job_id, owner="alice", spec=JobSpec("true"), status=history[-1][0],
               created_at=T0, updates=updates, **fields)  # type: ignore[arg-type]  # fmt: skip


def test_every_server_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.request("grpc", "/x", "OK", 0.01, submit=True)
    assert samples(one)[("jobyard_requests_total", (("code", "OK"), ("face", "grpc"),
                                                     ("method", "/x")))] == 1  # fmt: skip
    assert ("jobyard_requests_total", (("code", "OK"), ("face", "grpc"), ("method", "/x"))) \
        not in samples(two)  # fmt: skip
    assert samples(one)[("jobyard_submit_latency_seconds_count", (("face", "grpc"),))] == 1


def test_launch_and_end_latencies_come_from_the_history_once_per_job(tmp_path: Path) -> None:
    metrics = Metrics()
    layout = JobLayout(tmp_path)
    counts = _JobCounts()
    counts.since = T0  # the server started with these jobs' history
    observe = _Observer(metrics, layout, counts)
    queued = [(Status.QUEUED, 0.0), (Status.INITIALIZING, 0.5)]
    running = job("a", *queued, (Status.RUNNING, 2.0), backend="local")
    observe(running)
    observe(running)  # the same change published again (an update): counted once
    stopping = [*queued, (Status.RUNNING, 2.0), (Status.STOPPING, 10.0)]
    observe(job("a", *stopping, (Status.STOPPED, 10.25), ended_at=T0 + timedelta(seconds=10.2)))
    got = samples(metrics)
    assert got[("jobyard_launch_latency_seconds_count", (("backend", "local"),))] == 1
    assert got[("jobyard_launch_latency_seconds_sum", (("backend", "local"),))] == 2.0
    assert got[("jobyard_end_latency_seconds_sum", (("status", "STOPPED"),))] == 0.25
    exited = job("b", (Status.QUEUED, 0), (Status.RUNNING, 1), (Status.COMPLETED, 5.5),
                 ended_at=T0 + timedelta(seconds=5))  # fmt: skip
    observe(exited)
    assert samples(metrics)[("jobyard_end_latency_seconds_sum", (("status", "COMPLETED"),))] == 0.5
    counts.since = T0 + timedelta(hours=1)  # a restart: jobs adopted running count no launch
    observe(job("c", (Status.QUEUED, 0), (Status.RUNNING, 1), backend="local"))
    assert samples(metrics)[("jobyard_launch_latency_seconds_count", (("backend", "local"),))] == 1


def test_jobs_by_status_queue_depth_and_commits_from_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobyard.db")
    for i, status in enumerate([Status.QUEUED, Status.QUEUED, Status.RUNNING]):
        store.create(Job(id=f"j{i}", owner="alice", spec=JobSpec("true"), status=status,
                         created_at=T0))  # fmt: skip
    metrics = Metrics()

    class Hub:
        followers = 3

    class Engine:
        layout = JobLayout(tmp_path / "data")

        class events:
            @staticmethod
            def observe(observer: object) -> None:
                pass

    metrics.bind(Engine(), store, Hub())  # type: ignore[arg-type]
    store.transition("j0", Status.INITIALIZING, "starting")  # one more COMMIT, timed
    store.flush()  # by the store's writer thread
    got = samples(metrics)
    assert got[("jobyard_jobs", (("status", "QUEUED"),))] == 1
    assert got[("jobyard_jobs", (("status", "INITIALIZING"),))] == 1
    assert got[("jobyard_jobs", (("status", "FAILED"),))] == 0
    assert got[("jobyard_queue_depth", ())] == 1
    assert got[("jobyard_followers", ())] == 3
    assert got[("jobyard_store_commit_seconds_count", ())] >= 1
    store.close()
