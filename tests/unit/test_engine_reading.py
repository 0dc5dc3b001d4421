"""The engine's face-neutral reading calls (engine/reading.py) and owner scoping, over the
in-memory store and the fake runtime: what any face (gRPC, HTTP) gets to translate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.engine.reading import JobChange
from jobyard.runtime import ExitInfo
from tests.unit.test_engine import WAIT_SECONDS, Rig, rig_for, spec

ALICE = Identity("alice", Role.USER, "physics")
BOB = Identity("bob", Role.USER, "physics")
MALLORY = Identity("mallory", Role.USER)
VIEWER = Identity("auditor", Role.VIEWER)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig_for(tmp_path) as r:
        yield r


async def _collect(changes: AsyncGenerator[JobChange, None]) -> list[JobChange]:
    async with asyncio.timeout(WAIT_SECONDS), contextlib.aclosing(changes):
        return [change async for change in changes]


async def test_every_call_answers_another_owners_job_as_absent(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    for ref in (job.id, job.id[:8]):
        for call, args in (
            (rig.engine.job, (MALLORY, ref)),
            (rig.engine.read_output, (MALLORY, ref)),
            (rig.engine.watch_jobs, (MALLORY, [ref])),
            (rig.engine.download, (MALLORY, ref, "out.txt")),
        ):
            with pytest.raises(NotFound) as info:
                call(*args)  # type: ignore[operator]
            assert str(info.value) == f"job not found: {ref}"
        for action in (
            rig.engine.stop(MALLORY, ref),
            rig.engine.extend(MALLORY, ref, 60),
            rig.engine.suspend(MALLORY, ref),
            rig.engine.delete(MALLORY, ref),
            rig.engine.details(MALLORY, ref),
            rig.engine.list_files(MALLORY, ref),
        ):
            with pytest.raises(NotFound, match=f"^job not found: {ref}$"):
                await action
    assert rig.store.get(job.id).status.value == "RUNNING"  # nothing acted on it
    assert rig.engine.jobs(MALLORY) == []
    assert [j.id for j in rig.engine.jobs(BOB)] == [job.id]  # same project
    assert [j.id for j in rig.engine.jobs(VIEWER)] == [job.id]


async def test_a_watch_of_every_job_carries_only_what_the_caller_may_see(rig: Rig) -> None:
    mine = await rig.engine.submit(ALICE, spec())
    earlier = await rig.engine.submit(MALLORY, spec())
    changes = rig.engine.watch_jobs(MALLORY)
    # The snapshot is read after subscribing: once it arrives, every change reaches us.
    first = await asyncio.wait_for(anext(changes), WAIT_SECONDS)
    rig.engine.events.publish(rig.store.get(mine.id))  # alice's change: must not
    theirs = await rig.engine.submit(MALLORY, spec())
    rig.runtime.finish(theirs.id, ExitInfo(exit_code=0))
    seen = [first]
    while seen[-1].job.id != theirs.id or not seen[-1].job.status.terminal:
        seen.append(await asyncio.wait_for(anext(changes), WAIT_SECONDS))
    await changes.aclose()

    assert (first.job.id, first.snapshot) == (earlier.id, True)
    assert {c.job.id for c in seen} == {earlier.id, theirs.id}


async def test_a_watch_of_given_jobs_is_a_snapshot_then_changes_until_they_end(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    changes = rig.engine.watch_jobs(BOB, [job.id[:8]])
    first = await asyncio.wait_for(anext(changes), WAIT_SECONDS)
    rig.runtime.finish(job.id, ExitInfo(exit_code=3))
    rest = await _collect(changes)

    assert (first.job.id, first.snapshot) == (job.id, True)
    assert rest[-1].job.status.value == "FAILED"
    assert not any(c.snapshot for c in rest)


async def test_read_output_from_an_offset_or_the_last_lines(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    rig.runtime.started[job.id].output_path.write_bytes(b"one\ntwo\nthree\n")

    async def read(**how: int) -> list[tuple[int, bytes]]:
        chunks = rig.engine.read_output(BOB, job.id, **how)
        async with contextlib.aclosing(chunks):
            return [chunk async for chunk in chunks]

    assert b"".join(d for _, d in await read(offset=4)) == b"two\nthree\n"
    tail = await read(tail_lines=2)
    assert tail[0][0] == 4 and b"".join(d for _, d in tail) == b"two\nthree\n"
    with pytest.raises(InvalidArgument, match="rank"):
        rig.engine.read_output(ALICE, job.id, rank=1)  # refused before anything streams


async def test_a_tail_of_empty_output_starts_with_the_cursor(rig: Rig) -> None:
    job = await rig.engine.submit(ALICE, spec())
    chunks = rig.engine.read_output(ALICE, job.id, tail_lines=10, follow=True)

    first = await asyncio.wait_for(anext(chunks), WAIT_SECONDS)
    await chunks.aclose()

    assert first == (0, b"")
