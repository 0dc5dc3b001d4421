"""SDK lifecycle methods against a fake jobyard.v1 stub: wait/isdone via WatchJobs, download."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from jobyard.api.gen import joblet_pb2
from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.client import Client, ConnectionFailed, JobUpdate
from jobyard.client import lifecycle as lifecycle_module
from jobyard.domain.errors import InvalidArgument, JobyardError, NotFound
from tests.unit.test_client import FakeRpcError


def event(status: str, snapshot: bool = False, job_id: str = "j1") -> v1.JobEvent:
    details = v1.JobDetails(
        job=joblet_pb2.Job(id=job_id, status=status),
        updates=[v1.StatusUpdate(timestamp="t0", status=status, message=status.lower())],
    )
    return v1.JobEvent(job=details, snapshot=snapshot)


class FakeStream:
    def __init__(self, items: list[Any], error: grpc.RpcError | None = None) -> None:
        self.items, self.error, self.cancelled = items, error, False

    def __iter__(self) -> Iterator[Any]:
        yield from self.items
        if self.error is not None:
            raise self.error

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeV1:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Any, float | None]] = []
        self.streams: list[FakeStream] = []

    def WatchJobs(self, request: v1.WatchJobsRequest, timeout: float | None = None) -> Any:
        self.requests.append(("WatchJobs", request, timeout))
        return self.streams.pop(0)

    def DownloadFile(self, request: v1.DownloadFileRequest, timeout: float | None = None) -> Any:
        self.requests.append(("DownloadFile", request, timeout))
        return self.streams.pop(0)

    def ExtendJob(self, request: v1.ExtendJobRequest, timeout: float | None = None) -> Any:
        self.requests.append(("ExtendJob", request, timeout))
        return event("RUNNING").job


@pytest.fixture
def v1_stub(monkeypatch: pytest.MonkeyPatch) -> FakeV1:
    stub = FakeV1()
    monkeypatch.setattr(Client, "_v1", property(lambda self: stub))
    monkeypatch.setattr(lifecycle_module, "RESUBSCRIBE_PAUSE_SECONDS", 0.0)
    return stub


@pytest.fixture
def client() -> Iterator[Client]:
    with Client("127.0.0.1:1", insecure=True) as c:
        yield c


def test_wait_returns_the_event_that_shows_the_end(client: Client, v1_stub: FakeV1) -> None:
    stream = FakeStream([event("RUNNING", True), event("STOPPING"), event("STOPPED"),
                         event("STOPPED")])  # fmt: skip
    v1_stub.streams = [stream]

    job = client.wait("j1", timeout=5)

    assert (job.id, job.status) == ("j1", "STOPPED")
    assert job.updates == (JobUpdate("t0", "STOPPED", "stopped"),)
    name, request, timeout = v1_stub.requests[0]
    assert (name, list(request.ids)) == ("WatchJobs", ["j1"])
    assert timeout is not None and 0 < timeout <= 5
    assert stream.cancelled  # the watch is ended, not left open


def test_wait_tells_on_event_every_state_it_sees(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([event("RUNNING", True), event("STOPPING"), event("STOPPED")])]
    seen: list[tuple[str, bool]] = []

    client.wait("j1", on_event=lambda e: seen.append((e.job.status, e.snapshot)))

    assert seen == [("RUNNING", True), ("STOPPING", False), ("STOPPED", False)]


def test_wait_on_an_ended_job_returns_its_snapshot(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([event("COMPLETED", True)])]
    assert client.wait("j1").status == "COMPLETED"
    assert v1_stub.requests[0][2] is None  # no timeout: no deadline on the watch


def test_wait_watches_again_when_the_server_closes_early(client: Client, v1_stub: FakeV1) -> None:
    too_slow = FakeRpcError(grpc.StatusCode.ABORTED, "watcher fell too far behind")
    v1_stub.streams = [
        FakeStream([event("RUNNING", True)]),  # ended without the job ending
        FakeStream([event("RUNNING", True)], too_slow),
        FakeStream([event("FAILED", True)]),
    ]
    assert client.wait("j1").status == "FAILED"
    assert len(v1_stub.requests) == 3


def test_wait_raises_timeout_error_at_the_deadline(client: Client, v1_stub: FakeV1) -> None:
    deadline = FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    v1_stub.streams = [FakeStream([event("RUNNING", True)], deadline)]
    with pytest.raises(TimeoutError, match=r"job j1 did not end within 0\.5 s"):
        client.wait("j1", timeout=0.5)


def test_wait_with_no_time_left_does_not_watch(client: Client, v1_stub: FakeV1) -> None:
    with pytest.raises(TimeoutError):
        client.wait("j1", timeout=0)
    assert v1_stub.requests == []


def test_wait_for_an_unknown_job_is_not_found(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([], FakeRpcError(grpc.StatusCode.NOT_FOUND, "job not found: zz"))]
    with pytest.raises(NotFound, match="job not found: zz"):
        client.wait("zz", timeout=1)


def test_isdone_of_an_id_asks_for_the_current_state(client: Client, v1_stub: FakeV1) -> None:
    running, done = FakeStream([event("RUNNING", True)]), FakeStream([event("COMPLETED", True)])
    v1_stub.streams = [running, done]
    assert client.isdone("j1") is False
    assert client.isdone("j1") is True
    assert running.cancelled and done.cancelled


def test_isdone_without_an_answer_is_an_error(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([])]
    with pytest.raises(JobyardError, match="no state for job j1"):
        client.isdone("j1")


def test_watch_yields_snapshot_then_changes(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([event("QUEUED", True, "a"), event("RUNNING", False, "a")])]
    events = list(client.watch())
    assert [(e.job.id, e.job.status, e.snapshot) for e in events] == [
        ("a", "QUEUED", True), ("a", "RUNNING", False),
    ]  # fmt: skip
    assert list(v1_stub.requests[0][1].ids) == []


def test_extend_rounds_a_fraction_up(client: Client, v1_stub: FakeV1) -> None:
    client.extend("j1", 0.5)
    assert v1_stub.requests[0][1] == v1.ExtendJobRequest(id="j1", seconds=1)


def chunks(*parts: bytes) -> list[v1.FileChunk]:
    out, offset = [], 0
    for data in parts:
        out.append(v1.FileChunk(offset=offset, data=data))
        offset += len(data)
    return out


def test_download_to_a_path_writes_the_whole_file(
    client: Client, v1_stub: FakeV1, tmp_path: Path
) -> None:
    v1_stub.streams = [FakeStream(chunks(b"ab", b"cd"))]
    assert client.download("j1", "sub/out.txt", tmp_path / "got.txt") == 4
    assert (tmp_path / "got.txt").read_bytes() == b"abcd"
    assert list(tmp_path.iterdir()) == [tmp_path / "got.txt"]
    assert v1_stub.requests[0][1] == v1.DownloadFileRequest(id="j1", path="sub/out.txt")


def test_download_into_a_directory_keeps_the_name(
    client: Client, v1_stub: FakeV1, tmp_path: Path
) -> None:
    v1_stub.streams = [FakeStream(chunks(b"x"))]
    client.download("j1", "sub/out.txt", tmp_path)
    assert (tmp_path / "out.txt").read_bytes() == b"x"


def test_download_to_a_file_object(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream(chunks(b"12", b"345"))]
    out = io.BytesIO()
    assert client.download("j1", "f", out) == 5
    assert out.getvalue() == b"12345"


def test_a_refused_download_leaves_nothing_behind(
    client: Client, v1_stub: FakeV1, tmp_path: Path
) -> None:
    refusal = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "invalid path '../x'")
    v1_stub.streams = [FakeStream(chunks(b"partial"), refusal)]
    with pytest.raises(InvalidArgument, match="invalid path"):
        client.download("j1", "../x", tmp_path / "got")
    assert list(tmp_path.iterdir()) == []


def test_a_gap_in_the_stream_is_an_error(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([v1.FileChunk(offset=0, data=b"ab"),
                                   v1.FileChunk(offset=5, data=b"cd")])]  # fmt: skip
    with pytest.raises(JobyardError, match="broke off at byte 2"):
        client.download("j1", "f", io.BytesIO())


def unavailable() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")


def test_wait_waits_for_a_restarting_server(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [
        FakeStream([event("RUNNING", True)], unavailable()),  # the server goes away
        FakeStream([], unavailable()),  # still down
        FakeStream([event("COMPLETED", True)]),  # back, and the job ended meanwhile
    ]
    assert client.wait("j1", timeout=10).status == "COMPLETED"
    assert len(v1_stub.requests) == 3


def test_wait_on_a_server_never_reached_fails_at_once(client: Client, v1_stub: FakeV1) -> None:
    v1_stub.streams = [FakeStream([], unavailable())]
    with pytest.raises(ConnectionFailed, match="cannot reach the jobyard server"):
        client.wait("j1", timeout=10)
    assert len(v1_stub.requests) == 1


def test_wait_gives_up_on_a_server_gone_for_good(
    client: Client, v1_stub: FakeV1, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle_module, "WAIT_RECONNECT_SECONDS", 0.3)
    v1_stub.streams = [FakeStream([event("RUNNING", True)], unavailable())] + [
        FakeStream([], unavailable()) for _ in range(10)
    ]
    with pytest.raises(ConnectionFailed):
        client.wait("j1")
    assert 2 <= len(v1_stub.requests) <= 4
