"""Client.read_logs without a server: offsets, resuming after a broken stream, giving up."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from jobyard.client import ConnectionFailed, LogChunk
from jobyard.client import logs as logs_module
from jobyard.client.logs import Backoff, LogMethods
from jobyard.domain.errors import NotFound


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


Script = list[LogChunk | BaseException]


class ScriptedLogs(LogMethods):
    """Each ReadLogs call replays the next script: chunks, then maybe an error."""

    def __init__(self, *scripts: Script) -> None:
        self.settings = types.SimpleNamespace(server="localhost:50051")
        self.scripts = list(scripts)
        self.requests: list[tuple[int, int, bool]] = []

    def _read_once(
        self, id: str, offset: int, tail: int, follow: bool, rank: int = 0
    ) -> Iterator[LogChunk]:
        self.requests.append((offset, tail, follow))
        for item in self.scripts.pop(0):
            if isinstance(item, BaseException):
                raise item
            yield item


UNAVAILABLE = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")
TOO_SLOW = FakeRpcError(
    grpc.StatusCode.RESOURCE_EXHAUSTED, "follower too slow: resume from offset 6"
)


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(logs_module.time, "sleep", slept.append)
    return slept


def test_a_broken_follow_resumes_right_after_the_last_chunk(no_sleeping: list[float]) -> None:
    logs = ScriptedLogs(
        [LogChunk(0, b"abc"), LogChunk(3, b"def"), UNAVAILABLE],
        [TOO_SLOW],
        [LogChunk(6, b"gh")],
    )
    notices: list[str] = []
    chunks = list(logs.read_logs("j", follow=True, reconnect=60, on_retry=notices.append))
    assert b"".join(c.data for c in chunks) == b"abcdefgh"
    assert logs.requests == [(0, 0, True), (6, 0, True), (6, 0, True)]
    assert notices[0] == "log stream interrupted (Socket closed); resuming from offset 6 in 0.2 s"
    assert no_sleeping == [0.2, 0.4]


def test_a_tail_resumes_by_offset_once_its_start_is_known() -> None:
    logs = ScriptedLogs(
        [LogChunk(40, b""), UNAVAILABLE],  # the empty chunk tells where the tail starts
        [LogChunk(40, b"late\n")],
    )
    chunks = list(logs.read_logs("j", tail=3, follow=True, reconnect=60))
    assert chunks == [LogChunk(40, b"late\n")]  # empty chunks are not handed out
    assert logs.requests == [(0, 3, True), (40, 0, True)]


def test_a_tail_that_broke_before_its_first_chunk_asks_for_the_tail_again() -> None:
    logs = ScriptedLogs([UNAVAILABLE], [LogChunk(7, b"x\n")])
    assert list(logs.read_logs("j", tail=1, reconnect=60)) == [LogChunk(7, b"x\n")]
    assert logs.requests == [(0, 1, False), (0, 1, False)]


def test_without_reconnect_a_broken_stream_raises() -> None:
    logs = ScriptedLogs([LogChunk(0, b"a"), UNAVAILABLE])
    with pytest.raises(ConnectionFailed, match="cannot reach the jobyard server"):
        list(logs.read_logs("j", follow=True))


def test_errors_that_a_retry_cannot_fix_are_raised_at_once() -> None:
    logs = ScriptedLogs([FakeRpcError(grpc.StatusCode.NOT_FOUND, "job not found: j")])
    with pytest.raises(NotFound, match="job not found: j"):
        list(logs.read_logs("j", follow=True, reconnect=60))


def test_reconnecting_gives_up_after_its_budget_without_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(logs_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(logs_module.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    logs = ScriptedLogs(*([UNAVAILABLE] for _ in range(100)))
    with pytest.raises(ConnectionFailed):
        list(logs.read_logs("j", follow=True, reconnect=10))
    assert 5 <= len(logs.requests) <= 8  # 0.2 + 0.4 + ... capped at 5 s, within 10 s
    assert clock[0] == pytest.approx(10)


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs_module.time, "monotonic", lambda: 0.0)
    backoff = Backoff(budget=100, first=1, cap=4)
    assert [backoff.next_delay() for _ in range(4)] == [1, 2, 4, 4]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_leaving_early_closes_the_stream() -> None:
    closed: list[bool] = []

    class Closing(ScriptedLogs):
        def _read_once(self, *args: Any) -> Iterator[LogChunk]:
            try:
                yield LogChunk(0, b"a")
                yield LogChunk(1, b"b")
            finally:
                closed.append(True)

    chunks = Closing().read_logs("j", follow=True)
    assert next(chunks) == LogChunk(0, b"a")
    chunks.close()  # type: ignore[attr-defined]
    assert closed == [True]
