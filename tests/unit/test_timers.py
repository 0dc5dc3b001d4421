"""JobTimers and the lifecycle config keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from jobyard.config import load_config
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import utcnow
from jobyard.engine import timers as timers_module
from jobyard.engine.timers import JobTimers


async def test_a_timer_runs_its_action_once_at_the_time() -> None:
    timers, fired = JobTimers(), asyncio.Event()
    calls: list[str] = []

    async def action(job_id: str) -> None:
        calls.append(job_id)
        fired.set()

    when = utcnow() + timedelta(seconds=0.05)
    timers.arm("j1", "expiry", when, action)
    assert timers.armed("j1") == {"expiry"}
    await asyncio.wait_for(fired.wait(), 2)
    assert utcnow() >= when
    assert calls == ["j1"]
    assert timers.armed("j1") == set()
    await timers.close()


async def test_arming_again_replaces_and_cancel_removes() -> None:
    timers = JobTimers()
    calls: list[str] = []

    async def action(job_id: str) -> None:
        calls.append(job_id)

    soon = utcnow() + timedelta(seconds=0.05)
    timers.arm("j1", "expiry", soon, action)
    timers.arm("j1", "expiry", utcnow() + timedelta(hours=1), action)  # replaces
    timers.arm("j2", "start", soon, action)
    timers.arm("j2", "expiry", soon, action)
    timers.cancel("j2")
    await asyncio.sleep(0.15)
    assert calls == []
    assert timers.armed("j1") == {"expiry"}
    await timers.close()
    assert timers.armed("j1") == set()


async def test_a_long_wait_is_slept_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers_module, "MAX_SLEEP_SECONDS", 0.02)
    timers, fired = JobTimers(), asyncio.Event()

    async def action(job_id: str) -> None:
        fired.set()

    when = utcnow() + timedelta(seconds=0.1)
    timers.arm("j1", "expiry", when, action)
    await asyncio.wait_for(fired.wait(), 2)
    assert utcnow() >= when  # not at the first 20 ms wake-up
    await timers.close()


async def test_a_failing_action_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    timers = JobTimers()

    async def action(job_id: str) -> None:
        raise RuntimeError("boom")

    timers.arm("j1", "expiry", utcnow(), action)
    await asyncio.sleep(0.05)
    assert "timer action failed | jobId=j1 timer=expiry" in caplog.text
    await timers.close()


def test_capacity_bounds_are_read_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("jobyard:\n  maxTotalCpu: 400\n  maxTotalMemory: 2048\n")
    config = load_config(path, data_dir=tmp_path)
    assert (config.jobyard.max_total_cpu, config.jobyard.max_total_memory) == (400, 2048)
    assert load_config(None, data_dir=tmp_path).jobyard.max_total_cpu == 0


def test_a_negative_capacity_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("jobyard:\n  maxTotalMemory: -1\n")
    with pytest.raises(InvalidArgument, match="maxTotalMemory must not be negative"):
        load_config(path, data_dir=tmp_path)


async def test_a_timer_never_acts_before_its_wall_clock_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loop's monotonic clock says "time" while the wall clock is still half a
    # millisecond short (the two drift): the action waits for the wall clock.
    start = utcnow()
    wall = [start]
    monkeypatch.setattr(timers_module, "utcnow", lambda: wall[0])
    timers, fired = JobTimers(), asyncio.Event()
    seen: list[object] = []

    async def action(job_id: str) -> None:
        seen.append(wall[0])
        fired.set()

    when = start + timedelta(milliseconds=20)
    timers.arm("j1", "expiry", when, action)
    wall[0] = when - timedelta(microseconds=500)
    await asyncio.sleep(0.08)  # the loop's 20 ms have passed, several times over
    assert not fired.is_set()

    wall[0] = when
    await asyncio.wait_for(fired.wait(), 2)
    assert seen == [when]
    await timers.close()
