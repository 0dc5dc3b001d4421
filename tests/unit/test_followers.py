"""LogHub: readers from byte offsets, and followers woken by inotify until the job ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.logs import JobLayout, LogConfig, LogHub
from jobyard.logs.followers import CHUNK_BYTES

JOB = "0f0f0f0f-0000-4000-8000-000000000001"
WAIT_SECONDS = 2.0


@pytest.fixture
def layout(tmp_path: Path) -> JobLayout:
    layout = JobLayout(tmp_path)
    layout.prepare()
    layout.create_job_dir(JOB)
    return layout


@pytest.fixture
async def hub(layout: JobLayout) -> AsyncIterator[LogHub]:
    h = LogHub(layout)
    h.start()
    yield h
    h.close()


@pytest.fixture
def out(layout: JobLayout) -> Path:
    """The job's output file (the job's processes append to it directly)."""
    return layout.output(JOB)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


async def collect(
    hub: LogHub, *, offset: int = 0, follow: bool, ended: Callable[[], bool] = lambda: False
) -> list[tuple[int, bytes]]:
    async def run() -> list[tuple[int, bytes]]:
        chunks = []
        async with contextlib.aclosing(
            hub.read(JOB, offset=offset, follow=follow, ended=ended)
        ) as reader:
            async for chunk in reader:
                chunks.append(chunk)
        return chunks

    return await asyncio.wait_for(run(), WAIT_SECONDS)


def joined(chunks: list[tuple[int, bytes]], start: int = 0) -> bytes:
    """The bytes of ``chunks``, checking they are contiguous (no gap, no repeat)."""
    expected = start
    for off, data in chunks:
        assert off == expected, f"chunk at {off}, expected {expected}"
        assert data
        expected += len(data)
    return b"".join(data for _, data in chunks)


class Follower:
    """A follower running in a task, recording what it receives."""

    def __init__(self, hub: LogHub, ended: Callable[[], bool] = lambda: False) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.task = asyncio.create_task(self._run(hub, ended))

    async def _run(self, hub: LogHub, ended: Callable[[], bool]) -> None:
        async with contextlib.aclosing(hub.read(JOB, follow=True, ended=ended)) as reader:
            async for chunk in reader:
                self.chunks.append(chunk)

    @property
    def received(self) -> bytes:
        return joined(self.chunks)

    async def until_received(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                while self.received != data:
                    assert data.startswith(self.received), self.received
                    await asyncio.sleep(0.001)
        except TimeoutError:
            pytest.fail(f"follower got {self.received!r}, waiting for {data!r}")

    async def finished(self) -> bytes:
        await asyncio.wait_for(self.task, WAIT_SECONDS)
        return self.received


# -- reading without follow --------------------------------------------------------------------


async def test_read_returns_everything_from_offset_zero(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"hello\nworld\n")
    assert joined(await collect(hub, follow=False)) == b"hello\nworld\n"


async def test_read_from_a_mid_offset_returns_the_rest(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"hello\nworld\n")
    chunks = await collect(hub, offset=6, follow=False)
    assert chunks[0][0] == 6
    assert joined(chunks, start=6) == b"world\n"


async def test_read_past_the_end_returns_nothing(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"abc")
    assert await collect(hub, offset=3, follow=False) == []
    assert await collect(hub, offset=100, follow=False) == []


async def test_read_of_a_large_output_is_complete_and_in_order(hub: LogHub, out: Path) -> None:
    data = bytes(range(256)) * (3 * CHUNK_BYTES // 256 + 7)
    out.write_bytes(data)
    chunks = await collect(hub, follow=False)
    assert len(chunks) > 1
    assert joined(chunks) == data
    assert hub.size(JOB) == len(data)


async def test_read_of_a_job_without_output_returns_nothing(hub: LogHub, out: Path) -> None:
    out.unlink()
    assert await collect(hub, follow=False) == []
    assert hub.size(JOB) == 0


async def test_read_without_follow_does_not_wait_for_the_job(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"partial")
    # ended() says the job is still running; without follow the reader stops anyway.
    assert joined(await collect(hub, follow=False, ended=lambda: False)) == b"partial"


# -- following ---------------------------------------------------------------------------------


async def test_follower_gets_history_then_live_output_then_stops_at_the_end(
    hub: LogHub, out: Path
) -> None:
    out.write_bytes(b"before\n")
    follower = Follower(hub)
    await follower.until_received(b"before\n")

    async def writer() -> None:
        for i in range(5):
            append(out, f"live {i}\n".encode())
            await asyncio.sleep(0)

    await asyncio.create_task(writer())
    expected = b"before\n" + b"".join(f"live {i}\n".encode() for i in range(5))
    # Delivered while the job is still running: woken by the file growing, not by the end.
    await follower.until_received(expected)
    assert not follower.task.done()

    append(out, b"last words\n")
    hub.job_ended(JOB)
    assert await follower.finished() == expected + b"last words\n"


async def test_two_followers_each_get_the_whole_stream(hub: LogHub, out: Path) -> None:
    append(out, b"0" * 10)
    first, second = Follower(hub), Follower(hub)
    expected = b"0" * 10
    for i in range(20):
        line = f"line {i:02d}\n".encode() * (i + 1)
        append(out, line)
        expected += line
        if i % 5 == 0:
            await asyncio.sleep(0)
    await first.until_received(expected)
    hub.job_ended(JOB)
    assert await first.finished() == expected
    assert await second.finished() == expected


async def test_a_stalled_follower_delays_nobody_and_misses_nothing(hub: LogHub, out: Path) -> None:
    append(out, b"start\n")
    resume = asyncio.Event()
    slow: list[tuple[int, bytes]] = []

    async def slow_reader() -> None:
        async with contextlib.aclosing(hub.read(JOB, follow=True, ended=lambda: False)) as r:
            async for chunk in r:
                slow.append(chunk)
                await resume.wait()  # stalls after its first chunk

    slow_task = asyncio.create_task(slow_reader())
    fast = Follower(hub)
    await fast.until_received(b"start\n")
    append(out, b"more\n")
    await fast.until_received(b"start\nmore\n")
    hub.job_ended(JOB)
    assert await fast.finished() == b"start\nmore\n"
    assert not slow_task.done()

    resume.set()
    await asyncio.wait_for(slow_task, WAIT_SECONDS)
    assert joined(slow) == b"start\nmore\n"


async def test_follower_of_an_ended_job_returns_history_and_stops(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"all of it\n")
    chunks = await collect(hub, follow=True, ended=lambda: True)
    assert joined(chunks) == b"all of it\n"


async def test_end_announced_before_the_follower_attached_is_honoured(
    hub: LogHub, out: Path
) -> None:
    ended = False
    out.write_bytes(b"done\n")
    hub.job_ended(JOB)  # nobody follows yet: the hub keeps no state for the job
    ended = True
    chunks = await collect(hub, follow=True, ended=lambda: ended)
    assert joined(chunks) == b"done\n"


async def test_follower_from_an_offset_gets_only_later_bytes(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"0123456789")
    reader = hub.read(JOB, offset=4, follow=True, ended=lambda: False)
    async with contextlib.aclosing(reader):
        first = await asyncio.wait_for(anext(reader), WAIT_SECONDS)
        assert first == (4, b"456789")
        append(out, b"abc")
        assert await asyncio.wait_for(anext(reader), WAIT_SECONDS) == (10, b"abc")
        hub.job_ended(JOB)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(reader), WAIT_SECONDS)


async def test_a_new_follower_after_others_left_still_gets_woken(hub: LogHub, out: Path) -> None:
    append(out, b"a")
    first = Follower(hub)
    await first.until_received(b"a")
    first.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first.task

    second = Follower(hub)
    await second.until_received(b"a")
    append(out, b"b")
    await second.until_received(b"ab")
    hub.job_ended(JOB)
    assert await second.finished() == b"ab"


async def test_closing_the_hub_ends_followers(hub: LogHub, out: Path) -> None:
    append(out, b"x")
    follower = Follower(hub)
    await follower.until_received(b"x")
    hub.close()
    assert await follower.finished() == b"x"


# -- where a reader starts ----------------------------------------------------------------


async def test_start_offset_is_the_offset_asked_for_or_the_start_of_the_tail(
    hub: LogHub, out: Path
) -> None:
    out.write_bytes(b"one\ntwo\nthree\n")
    assert hub.start_offset(JOB, offset=4) == 4
    assert hub.start_offset(JOB, offset=14) == 14  # the end: a follower waits there
    assert hub.start_offset(JOB, tail_lines=2) == 4
    assert hub.start_offset(JOB, offset=99, tail_lines=1) == 8


async def test_start_offset_refuses_what_the_output_cannot_have(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"abc")
    with pytest.raises(InvalidArgument, match="offset 4 is past the end"):
        hub.start_offset(JOB, offset=4)
    out.unlink()
    with pytest.raises(InvalidArgument, match="offset 1 is past the end"):
        hub.start_offset(JOB, offset=1)
    assert hub.start_offset(JOB, tail_lines=3) == 0


async def test_a_closed_hub_follows_nobody_and_says_it_is_closed(hub: LogHub, out: Path) -> None:
    out.write_bytes(b"data")
    hub.close()
    assert hub.closed
    assert await collect(hub, follow=True) == []
    assert joined(await collect(hub, follow=False)) == b"data"  # history is still history
    hub.close()  # closing twice is harmless


async def test_output_removed_with_its_job_stays_readable_by_those_reading_it(
    hub: LogHub, layout: JobLayout, out: Path
) -> None:
    out.write_bytes(b"x" * (3 * CHUNK_BYTES))
    reader = hub.read(JOB, follow=False, ended=lambda: True)
    async with contextlib.aclosing(reader):
        first = await anext(reader)
        layout.remove(JOB)
        assert not layout.job_dir(JOB).exists()
        rest = [chunk async for chunk in reader]
    assert joined([first, *rest]) == b"x" * (3 * CHUNK_BYTES)
    assert await collect(hub, follow=False) == []  # new readers find nothing


async def test_a_polling_follower_sees_writes_inotify_never_reported(
    layout: JobLayout, out: Path
) -> None:
    """Another node's writes (a Slurm job on a shared file system) raise no inotify event
    here: without inotify at all, a polling hub still delivers every byte once, in order."""
    hub = LogHub(layout, LogConfig(poll_seconds=0.01))  # never started: no inotify
    append(out, b"history\n")
    chunks: list[bytes] = []

    async def follow() -> None:
        async with contextlib.aclosing(hub.read(JOB, follow=True, ended=lambda: False)) as reader:
            async for _, data in reader:
                chunks.append(data)
                if b"".join(chunks).endswith(b"live\n"):
                    return

    task = asyncio.create_task(follow())
    async with asyncio.timeout(WAIT_SECONDS):
        while not chunks:
            await asyncio.sleep(0.001)
        append(out, b"live\n")
        await task
    assert b"".join(chunks) == b"history\nlive\n"
