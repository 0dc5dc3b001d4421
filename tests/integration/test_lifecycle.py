"""The job lifecycle through the public API on a real server: time limits and extension,
scheduled starts, queueing and capacity, history, watch/wait, list/delete."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.api.gen import jobyard_v1_pb2_grpc as v1_grpc
from jobyard.client import Client, Job
from jobyard.domain.access import SYSTEM
from jobyard.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    NotFound,
    PermissionDenied,
)
from jobyard.engine import events as events_module
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread

WAIT = 30.0


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def until(admin: Client, job_id: str, status: str, timeout: float = 10.0) -> Job:
    """The job (with its history) once it shows ``status``, from its watch feed."""
    seen = []
    for event in admin.watch([job_id], timeout=timeout):
        if event.job.status == status:
            return event.job
        seen.append(event.job.status)
    raise AssertionError(f"{job_id} went through {seen} and ended, never {status}")


def history(job: Job) -> list[tuple[str, str]]:
    return [(u.status, u.message) for u in job.updates]


Configured = Callable[[str], tuple[ServerThread, Client]]


@pytest.fixture
def configured(tmp_path: Path, certs_dir: Path) -> Iterator[Configured]:
    """Start a server with the given YAML config; returns it and an admin client."""
    if root_problem():
        pytest.skip(root_problem() or "")
    started: list[tuple[ServerThread, Client]] = []

    def start(yaml: str) -> tuple[ServerThread, Client]:
        config = tmp_path / f"config-{len(started)}.yml"
        config.write_text(yaml)
        thread = ServerThread(tmp_path / f"data-{len(started)}", certs_dir, config_file=config)
        port = thread.start()
        client = Client(
            server=f"localhost:{port}",
            cert=str(certs_dir / "admin-client-cert.pem"),
            key=str(certs_dir / "admin-client-key.pem"),
            ca=str(certs_dir / "ca-cert.pem"),
        )
        started.append((thread, client))
        return thread, client

    yield start
    for thread, client in started:
        client.close()
        thread.close()


def reconnect(thread: ServerThread, certs_dir: Path) -> Client:
    return Client(
        server=f"localhost:{thread.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )


# -- time limits --------------------------------------------------------------------------------


def test_a_job_past_its_time_limit_is_stopped_with_reason_time_limit(admin: Client) -> None:
    started = time.monotonic()
    job = admin.submit("sleep", ["60"], time_limit=1)
    assert job.time_limit_seconds == 1

    done = admin.wait(job.id, timeout=WAIT)

    assert time.monotonic() - started < 5
    assert (done.status, done.termination_reason) == ("STOPPED", "TIME_LIMIT")
    assert done.message == "stopped: time limit reached"
    assert ts(done.expires_at) == ts(done.start_time) + timedelta(seconds=1)
    assert ts(done.end_time) >= ts(done.expires_at)
    assert history(done)[-2:] == [
        ("STOPPING", "time limit reached: signals sent"),
        ("STOPPED", "stopped: time limit reached"),
    ]


def test_a_job_ignoring_sigterm_is_killed_at_its_time_limit(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "trap '' TERM; sleep 60 & wait; sleep 60"], time_limit=1)
    done = admin.wait(job.id, timeout=WAIT)
    assert (done.status, done.termination_reason) == ("STOPPED", "TIME_LIMIT")
    assert ts(done.end_time) - ts(done.expires_at) < timedelta(seconds=2)


def test_the_configured_job_timeout_applies_to_jobs_without_a_limit(
    configured: Configured,
) -> None:
    _, admin = configured("joblet:\n  jobTimeout: 1s\n")
    job = admin.submit("sleep", ["60"])
    given = admin.submit("sleep", ["60"], time_limit=3600)
    assert (job.time_limit_seconds, given.time_limit_seconds) == (1, 3600)
    assert admin.wait(job.id, timeout=WAIT).termination_reason == "TIME_LIMIT"
    assert admin.job(given.id).status == "RUNNING"


def test_extend_gives_a_running_job_more_time(admin: Client) -> None:
    job = admin.submit("sleep", ["60"], time_limit=2)
    running = until(admin, job.id, "RUNNING")

    extended = admin.extend(job.id[:8], 60)

    assert extended.time_limit_seconds == 62
    assert ts(extended.expires_at) == ts(running.expires_at) + timedelta(seconds=60)
    status, message = history(extended)[-1]
    assert status == "RUNNING"
    assert message == f"time limit extended by 1m; expires at {extended.expires_at}"
    time.sleep(2.5)
    assert admin.job(job.id).status == "RUNNING"  # the first expiry passed harmlessly
    assert admin.stop(job.id).status == "STOPPED"
    assert admin.job(job.id).termination_reason == "USER_STOP"


def test_extend_refusals(admin: Client, viewer: Client) -> None:
    limited = admin.submit("sleep", ["60"], time_limit=60)
    unlimited = admin.submit("sleep", ["60"])
    finished = admin.submit("true", time_limit=60)
    admin.wait(finished.id, timeout=WAIT)

    with pytest.raises(InvalidArgument, match="must be a positive number"):
        admin.extend(limited.id, 0)
    with pytest.raises(InvalidArgument, match="must be a positive number"):
        admin.extend(limited.id, -10)
    with pytest.raises(FailedPrecondition) as exc:
        admin.extend(finished.id, 60)
    assert str(exc.value) == f"job is not running: {finished.id} (current status: COMPLETED)"
    with pytest.raises(FailedPrecondition, match="has no time limit"):
        admin.extend(unlimited.id, 60)
    with pytest.raises(NotFound):
        admin.extend(str(uuid.uuid4()), 60)
    with pytest.raises(PermissionDenied, match="operation extend_job"):
        viewer.extend(limited.id, 60)
    assert admin.job(limited.id).time_limit_seconds == 60


def test_a_time_limit_is_enforced_after_a_server_restart(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    job = admin.submit("sleep", ["60"], time_limit=2)
    until(admin, job.id, "RUNNING")
    server.stop()
    server.start()
    with reconnect(server, certs_dir) as again:
        done = again.wait(job.id, timeout=WAIT)
    assert (done.status, done.termination_reason) == ("STOPPED", "TIME_LIMIT")


# -- scheduled starts ----------------------------------------------------------------------------


def test_a_scheduled_job_waits_for_its_time(admin: Client) -> None:
    when = datetime.now(UTC) + timedelta(seconds=1.5)
    job = admin.submit("true", schedule=when)
    assert job.status == "SCHEDULED"
    assert abs(ts(job.scheduled_time) - when) < timedelta(milliseconds=1)
    assert job.start_time == ""

    done = admin.wait(job.id, timeout=WAIT)

    assert done.status == "COMPLETED"
    assert ts(done.start_time) >= when
    assert [s for s, _ in history(done)][:2] == ["SCHEDULED", "QUEUED"]
    assert history(done)[0][1] == f"scheduled to start at {job.scheduled_time}"


def test_a_scheduled_job_can_be_stopped_before_it_starts(admin: Client) -> None:
    job = admin.submit("true", schedule=datetime.now(UTC) + timedelta(seconds=1))
    assert admin.stop(job.id).status == "STOPPED"
    time.sleep(1.5)
    final = admin.job(job.id)
    assert (final.status, final.termination_reason, final.start_time) == (
        "STOPPED", "USER_STOP", "",
    )  # fmt: skip


def test_a_schedule_in_the_past_starts_now(admin: Client) -> None:
    job = admin.submit("true", schedule="2020-01-01T00:00:00Z")
    assert job.status != "SCHEDULED"
    assert admin.wait(job.id, timeout=WAIT).status == "COMPLETED"


def test_a_bad_schedule_is_invalid_and_creates_nothing(admin: Client) -> None:
    before = len(admin.jobs())
    with pytest.raises(InvalidArgument, match="invalid schedule 'tomorrow'"):
        admin.submit("true", schedule="tomorrow")
    assert len(admin.jobs()) == before


def test_a_scheduled_job_survives_a_server_restart(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    job = admin.submit("true", schedule=datetime.now(UTC) + timedelta(seconds=2))
    server.stop()
    server.start()
    with reconnect(server, certs_dir) as again:
        assert again.job(job.id).status == "SCHEDULED"
        assert again.wait(job.id, timeout=WAIT).status == "COMPLETED"


# -- queueing and capacity -------------------------------------------------------------------


def test_jobs_beyond_max_concurrent_wait_and_start_in_submission_order(
    configured: Configured,
) -> None:
    _, admin = configured("joblet:\n  maxConcurrentJobs: 1\n")
    first = admin.submit("sleep", ["60"])
    second = admin.submit("sleep", ["60"])
    third = admin.submit("sleep", ["60"])
    assert (second.status, second.message) == ("QUEUED", "waiting in the queue")
    assert third.status == "QUEUED"

    admin.stop(first.id)
    until(admin, second.id, "RUNNING")
    assert admin.job(third.id).status == "QUEUED"
    admin.stop(second.id)
    running = until(admin, third.id, "RUNNING")
    assert history(running) == [
        ("QUEUED", "waiting in the queue"),
        ("INITIALIZING", "setting up isolation and resources"),
        ("RUNNING", "running"),
    ]


def test_total_cpu_and_memory_bound_the_running_jobs(configured: Configured) -> None:
    _, admin = configured("jobyard:\n  maxTotalCpu: 150\n  maxTotalMemory: 1000\n")
    first = admin.submit("sleep", ["60"], max_cpu=100, max_memory=100)
    cpu_bound = admin.submit("sleep", ["60"], max_cpu=100, max_memory=100)
    assert (first.status, cpu_bound.status) == ("RUNNING", "QUEUED")
    with pytest.raises(InvalidArgument, match=r"maxCPU 200% exceeds .*maxTotalCpu"):
        admin.submit("sleep", ["60"], max_cpu=200)
    with pytest.raises(InvalidArgument, match=r"maxMemory 2000 MB exceeds .*maxTotalMemory"):
        admin.submit("sleep", ["60"], max_cpu=10, max_memory=2000)
    admin.stop(first.id)
    until(admin, cpu_bound.id, "RUNNING")


def test_queued_jobs_survive_a_server_restart(configured: Configured, certs_dir: Path) -> None:
    thread, admin = configured("joblet:\n  maxConcurrentJobs: 1\n")
    running = admin.submit("sleep", ["60"])
    queued = admin.submit("true")
    thread.stop()
    thread.start()
    with reconnect(thread, certs_dir) as again:
        assert again.job(queued.id).status == "QUEUED"
        assert again.job(running.id).status == "RUNNING"
        again.stop(running.id)
        assert again.wait(queued.id, timeout=WAIT).status == "COMPLETED"


def test_stopping_is_visible_while_the_processes_exit(configured: Configured) -> None:
    _, admin = configured("joblet:\n  cleanupTimeout: 1s\n")
    job = admin.submit("sh", ["-c", "trap '' TERM; echo ready; sleep 60 & wait; sleep 60"])
    _until_output(admin, job.id, b"ready")  # RUNNING comes before the trap is set
    events = admin.watch([job.id], timeout=WAIT)
    assert next(events).job.status == "RUNNING"

    stopper = threading.Thread(target=admin.stop, args=(job.id,))
    stopper.start()
    seen = [(e.job.status, time.monotonic()) for e in events]
    stopper.join(WAIT)

    assert [status for status, _ in seen] == ["STOPPING", "STOPPED"]
    assert seen[1][1] - seen[0][1] >= 0.9  # STOPPING lasted the grace period


def _until_output(admin: Client, job_id: str, expected: bytes) -> None:
    seen = b""
    for chunk in admin.logs(job_id, follow=True):
        seen += chunk
        if expected in seen:
            return
    raise AssertionError(f"{job_id} ended without writing {expected!r}: {seen!r}")


# -- watch and wait ------------------------------------------------------------------------


def test_watch_sends_a_snapshot_then_every_change_and_ends_with_the_job(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "sleep 0.5"])
    events = list(admin.watch([job.id[:8]], timeout=WAIT))

    assert events[0].snapshot and not any(e.snapshot for e in events[1:])
    assert events[0].job.id == job.id
    assert events[-1].job.status == "COMPLETED"
    statuses = [e.job.status for e in events]
    assert statuses.index("RUNNING") < statuses.index("COMPLETED")
    assert [s for s, _ in history(events[-1].job)][-2:] == ["RUNNING", "COMPLETED"]


def test_watching_every_job_sees_new_ones(admin: Client) -> None:
    old = admin.submit("true")
    admin.wait(old.id, timeout=WAIT)
    stream = admin.watch(timeout=WAIT)
    first = next(stream)
    assert first.snapshot and first.job.id == old.id
    new = admin.submit("true")
    for event in stream:
        if event.job.id == new.id and event.job.status == "COMPLETED":
            break
    stream.close()  # type: ignore[attr-defined]


def test_a_watcher_that_falls_behind_is_aborted_and_wait_still_returns(
    server: ServerThread, admin: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "WATCH_QUEUE_EVENTS", 1)
    job = admin.submit("sleep", ["60"])
    every = admin.watch(timeout=WAIT)
    assert next(every).snapshot  # subscribed

    async def burst() -> None:  # three changes before the watcher can take one
        assert server.running is not None
        engine = server.running.engine
        for _ in range(3):
            engine.events.publish(engine.job(SYSTEM, job.id))

    server.call(burst())
    with pytest.raises(JobyardError, match="fell too far behind; reconnect"):
        for _ in every:
            pass
    admin.stop(job.id)
    assert admin.wait(job.id, timeout=WAIT).status == "STOPPED"


def test_watch_and_wait_refusals(admin: Client) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound, match=f"job not found: {missing}"):
        list(admin.watch([missing], timeout=WAIT))
    with pytest.raises(NotFound):
        admin.wait(missing, timeout=5)
    job = admin.submit("sleep", ["60"])
    with pytest.raises(TimeoutError, match=r"did not end within 0\.5 s"):
        admin.wait(job.id, timeout=0.5)


def test_viewer_may_watch_and_wait(admin: Client, viewer: Client) -> None:
    job = admin.submit("true")
    assert viewer.wait(job.id, timeout=WAIT).status == "COMPLETED"
    assert viewer.isdone(job.id)


def test_isdone_by_id_reflects_the_job_now(admin: Client) -> None:
    job = admin.submit("sleep", ["60"])
    assert admin.isdone(job.id) is False
    admin.stop(job.id)
    assert admin.isdone(job.id) is True


# -- list and delete ------------------------------------------------------------------------


def test_list_filters_and_pages_newest_first(admin: Client, viewer: Client) -> None:
    a = admin.submit("true", name="build", labels={"team": "red"})
    b = admin.submit("true", name="test", labels={"team": "blue"})
    c = admin.submit("sleep", ["60"], name="build", labels={"team": "red", "tier": "1"})
    for job in (a, b):
        admin.wait(job.id, timeout=WAIT)
    until(admin, c.id, "RUNNING")

    def ids(**filters: Any) -> list[str]:
        return [j.id for j in viewer.jobs(**filters)]

    assert ids(name="build") == [c.id, a.id]
    assert ids(labels={"team": "red", "tier": "1"}) == [c.id]
    assert ids(status=["COMPLETED"]) == [b.id, a.id]
    assert ids(status="running") == [c.id]
    assert ids(owner="admin") == [c.id, b.id, a.id]
    assert ids(owner="nobody-else") == []
    assert ids(created_after=a.created_time) == [c.id, b.id]
    assert ids(created_before=c.created_time) == [b.id, a.id]
    assert ids(limit=2) == [c.id, b.id]

    page = admin.list_jobs(page_size=2)
    assert ([j.id for j in page.jobs], bool(page.next_page_token)) == ([c.id, b.id], True)
    rest = admin.list_jobs(page_size=2, page_token=page.next_page_token)
    assert ([j.id for j in rest.jobs], rest.next_page_token) == ([a.id], "")
    assert history(page.jobs[1])[-1] == ("COMPLETED", "completed")


@pytest.mark.parametrize(
    ("filters", "match"),
    [
        ({"status": ["DONE"]}, "invalid status 'DONE'"),
        ({"page_size": 5000}, "invalid pageSize 5000"),
        ({"page_size": -1}, "invalid pageSize -1"),
        ({"page_token": "xyz"}, "invalid page token 'xyz'"),
        ({"created_after": "yesterday"}, "invalid createdAfter 'yesterday'"),
    ],
)
def test_list_refusals(admin: Client, filters: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        admin.list_jobs(**filters)


def test_delete_removes_a_finished_job_with_its_output(server: ServerThread, admin: Client) -> None:
    job = admin.submit("sh", ["-c", "echo out; echo kept > file.txt"])
    admin.wait(job.id, timeout=WAIT)
    job_dir = server.data_dir / "jobs" / job.id
    assert (job_dir / "work" / "file.txt").exists()

    assert admin.delete(job.id[:8]) == job.id

    assert not job_dir.exists()
    with pytest.raises(NotFound):
        admin.job(job.id)
    assert job.id not in [j.id for j in admin.jobs()]
    with pytest.raises(NotFound):
        admin.delete(job.id)


def test_delete_refusals(admin: Client, viewer: Client) -> None:
    running = admin.submit("sleep", ["60"])
    with pytest.raises(FailedPrecondition) as exc:
        admin.delete(running.id)
    assert str(exc.value).startswith(f"job is not finished: {running.id} (current status: ")
    admin.stop(running.id)
    with pytest.raises(PermissionDenied, match="operation delete_job"):
        viewer.delete(running.id)
    assert admin.job(running.id).status == "STOPPED"


def test_list_and_watch_answer_with_the_same_details_as_get_job(
    server: ServerThread, admin: Client, certs_dir: Path
) -> None:
    job = admin.submit("printf", ["hello"], name=f"details-{uuid.uuid4().hex[:8]}")
    admin.wait(job.id, timeout=WAIT)
    creds = grpc.ssl_channel_credentials(
        root_certificates=(certs_dir / "ca-cert.pem").read_bytes(),
        private_key=(certs_dir / "admin-client-key.pem").read_bytes(),
        certificate_chain=(certs_dir / "admin-client-cert.pem").read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{server.port}", creds) as channel:
        stub = v1_grpc.JobyardServiceStub(channel)
        got = stub.GetJob(v1.JobRef(id=job.id))
        listed = stub.ListJobs(v1.ListJobsRequest(name=job.name)).jobs
        watched = list(stub.WatchJobs(v1.WatchJobsRequest(ids=[job.id])))
    assert got.outputBytes == 5
    assert [listed[0], watched[0].job] == [got, got]
