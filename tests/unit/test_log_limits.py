"""OutputLimits: a job's output past its maximum, or filling the disk, is reported once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from jobyard.domain.errors import ResourceExhausted
from jobyard.domain.status import TerminationReason
from jobyard.logs import JobLayout, LogConfig, LogHub
from jobyard.logs import limits as limits_module
from jobyard.logs.limits import DiskReserve, OutputLimits

JOB = "0f0f0f0f-0000-4000-8000-000000000002"
OTHER = "0f0f0f0f-0000-4000-8000-000000000003"
INTERVAL = 0.01


@pytest.fixture
def layout(tmp_path: Path) -> JobLayout:
    layout = JobLayout(tmp_path)
    layout.prepare()
    layout.create_job_dir(JOB)
    layout.create_job_dir(OTHER)
    return layout


def append(layout: JobLayout, job_id: str, n: int) -> None:
    with layout.output(job_id).open("ab") as f:
        f.write(b"x" * n)


class Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.reasons: list[TerminationReason] = []

    def __call__(self, job_id: str, why: str, reason: TerminationReason) -> None:
        self.calls.append((job_id, why))
        self.reasons.append(reason)


async def until(condition: object, seconds: float = 2.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(INTERVAL)


async def test_output_past_the_maximum_is_reported_once(layout: JobLayout) -> None:
    limits = OutputLimits(layout, max_bytes=1000, check_interval=INTERVAL)
    limits.start()
    reports = Reports()
    limits.guard(JOB, reports)
    limits.guard(OTHER, reports)
    append(layout, JOB, 1000)  # at the limit: fine
    append(layout, OTHER, 10)
    await asyncio.sleep(5 * INTERVAL)
    assert reports.calls == []
    append(layout, JOB, 1)
    await until(lambda: reports.calls)
    append(layout, JOB, 5000)
    await asyncio.sleep(5 * INTERVAL)
    assert reports.calls == [(JOB, "output limit of 1000 bytes reached (1001 bytes written)")]
    assert limits.guarded == 1  # the other job is still watched
    limits.close()


async def test_a_job_near_its_maximum_is_checked_long_before_the_interval(
    layout: JobLayout,
) -> None:
    limits = OutputLimits(layout, max_bytes=1_000_000, check_interval=60)
    limits.start()
    reports = Reports()
    limits.guard(JOB, reports)
    append(layout, JOB, 2_000_000)
    await until(lambda: reports.calls, seconds=1)
    limits.close()


async def test_an_adopted_job_already_past_the_maximum_is_reported_at_once(
    layout: JobLayout,
) -> None:
    append(layout, JOB, 2000)
    limits = OutputLimits(layout, max_bytes=1000, check_interval=INTERVAL)
    limits.start()
    reports = Reports()
    limits.guard(JOB, reports)
    assert reports.calls == [(JOB, "output limit of 1000 bytes reached (2000 bytes written)")]
    limits.close()


async def test_no_maximum_and_released_jobs_are_never_reported(layout: JobLayout) -> None:
    limits = OutputLimits(layout, max_bytes=0, check_interval=INTERVAL)
    limits.start()
    reports = Reports()
    limits.guard(JOB, reports)
    limits.guard(OTHER, reports)
    limits.release(OTHER)
    append(layout, JOB, 100_000)
    await asyncio.sleep(5 * INTERVAL)
    assert reports.calls == []
    assert limits.guarded == 1
    limits.close()
    assert limits.guarded == 0


async def test_a_full_disk_releases_the_reserve_and_reports_the_jobs_that_grew(
    layout: JobLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = [1 << 30]
    monkeypatch.setattr(limits_module, "free_bytes", lambda path: free[0])
    limits = OutputLimits(layout, max_bytes=0, reserve_bytes=4096, check_interval=INTERVAL)
    limits.start()
    assert layout.reserve.stat().st_size == 4096
    reports = Reports()
    limits.guard(JOB, reports)
    limits.guard(OTHER, reports)
    free[0] = 0
    append(layout, JOB, 300)  # OTHER wrote nothing: it is not to blame
    limits.check([JOB, OTHER])
    assert reports.calls == [(JOB, "data disk full: output kept up to 300 bytes")]
    assert not layout.reserve.exists()
    limits.close()


def test_the_reserve_is_made_only_with_room_for_it_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_module, "free_bytes", lambda path: 8191)
    reserve = DiskReserve(tmp_path / "reserve", 4096)
    reserve.ensure()
    assert not reserve.held
    monkeypatch.setattr(limits_module, "free_bytes", lambda path: 8192)
    reserve.ensure()
    assert reserve.held and os.path.getsize(tmp_path / "reserve") == 4096
    assert reserve.release() is True
    assert reserve.release() is False
    assert not DiskReserve(tmp_path / "none", 0).held


async def test_the_hub_settles_a_job_before_its_end_is_recorded(layout: JobLayout) -> None:
    hub = LogHub(layout, LogConfig(max_output_bytes=10, disk_reserve_bytes=0))
    hub.start()
    reports = Reports()
    hub.guard(JOB, reports)
    append(layout, JOB, 11)
    hub.settle(JOB)  # no waiting for the next poll
    assert reports.calls == [(JOB, "output limit of 10 bytes reached (11 bytes written)")]
    hub.close()


async def test_a_disk_limit_counts_the_output_and_reports_disk_limit(layout: JobLayout) -> None:
    # /work here is no file system of its own (no image): only the output counts.
    limits = OutputLimits(layout, max_bytes=0, check_interval=INTERVAL)
    limits.start()
    reports = Reports()
    limits.guard(JOB, reports, disk_bytes=2 * 1024 * 1024)
    (layout.workdir(JOB)).mkdir()
    (layout.workdir(JOB) / "big").write_bytes(b"x" * 3 * 1024 * 1024)
    append(layout, JOB, 2 * 1024 * 1024)
    limits.check([JOB])
    assert reports.calls == []  # exactly at the limit
    append(layout, JOB, 1)
    limits.check([JOB])
    assert reports.calls == [
        (JOB, f"disk limit of 2 MB reached ({2 * 1024 * 1024 + 1} bytes in /work and output)")
    ]
    assert reports.reasons == [TerminationReason.DISK_LIMIT]
    limits.close()


def test_new_work_is_refused_while_the_disk_is_full_until_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = [1 << 20]
    monkeypatch.setattr(limits_module, "free_bytes", lambda path: free[0])
    reserve = DiskReserve(tmp_path / "reserve", 256 * 1024)
    reserve.check_room()  # room: the reserve is made
    assert reserve.held
    reserve.release()
    free[0] = 300 * 1024  # released and used up: not enough to re-make it
    with pytest.raises(ResourceExhausted) as refused:
        reserve.check_room()
    assert str(refused.value) == (
        "the data disk is full: 0.3 MB free, 0.0 MB reserved for the server's records "
        "(needs 0.5 MB free to re-make a 0.2 MB reserve); new jobs are refused until space "
        "is freed"
    )
    free[0] = 1 << 20  # space came back
    reserve.check_room()
    assert reserve.held
