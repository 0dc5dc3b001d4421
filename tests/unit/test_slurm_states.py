"""Slurm's states mapped to the native model, over output recorded from a real cluster."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from jobyard.domain.status import TerminationReason
from jobyard.runtime.slurm.states import (
    SlurmJob,
    base_state,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
)

DATA = Path(__file__).parent / "data" / "slurm"


def recorded(name: str) -> SlurmJob:
    jobs = parse_scontrol((DATA / f"scontrol-{name}.txt").read_text())
    assert len(jobs) == 1
    return next(iter(jobs.values()))


def test_a_pending_job_is_queued_and_has_not_run() -> None:
    job = recorded("pend")
    assert (job.state, job.reason) == ("PENDING", "BeginTime")
    assert job.queued and not job.ended and not job.ran


@pytest.mark.parametrize("name", ["run", "susp"])
def test_running_and_suspended_jobs_have_run_and_not_ended(name: str) -> None:
    job = recorded(name)
    assert job.state == {"run": "RUNNING", "susp": "SUSPENDED"}[name]
    assert job.ran and not job.queued and not job.ended
    assert job.nodes == ("vm",)
    assert job.time_limit == "00:05:00"


def test_a_completed_job_exits_0_at_its_end_time() -> None:
    job = recorded("comp")
    info = job.exit_info()
    assert job.ended
    assert (info.exit_code, info.signal, info.stopped, info.oom_killed) == (0, None, None, False)
    assert info.ended_at == datetime.fromisoformat("2026-12-01T09:24:39").astimezone()


def test_a_failed_job_keeps_its_real_exit_code() -> None:
    info = recorded("fail").exit_info()
    assert (info.exit_code, info.signal, info.lost, info.launch_failed) == (3, None, False, False)


def test_a_job_killed_by_a_signal_reports_the_signal() -> None:
    job = recorded("sig")
    assert (job.state, job.reason, job.exit_code, job.exit_signal) == (
        "FAILED", "JobLaunchFailure", 0, 9
    )  # fmt: skip
    info = job.exit_info()
    assert (info.exit_code, info.signal) == (137, 9)


def test_cancelled_is_a_user_stop() -> None:
    info = recorded("canc").exit_info()
    assert info.stopped is TerminationReason.USER_STOP
    assert info.message == "cancelled in Slurm"


def test_timeout_is_a_stop_at_the_time_limit() -> None:
    job = recorded("tout")
    assert (job.state, job.reason) == ("TIMEOUT", "TimeLimit")
    assert job.exit_info().stopped is TerminationReason.TIME_LIMIT


def test_out_of_memory_is_oom_killed() -> None:
    info = recorded("oom").exit_info()
    assert info.oom_killed and info.stopped is None
    assert info.exit_code == 137  # Slurm records 0:125; the OOM killer's SIGKILL it was


@pytest.mark.parametrize(
    ("state", "says"),
    [("NODE_FAIL", "its node failed"), ("BOOT_FAIL", "its node failed to boot"),
     ("PREEMPTED", "it was preempted")],
)  # fmt: skip
def test_node_and_boot_failures_are_lost(state: str, says: str) -> None:
    info = SlurmJob("7", state).exit_info()
    assert info.lost and info.exit_code is None
    assert info.message == f"lost in Slurm: {says}"


def test_a_launch_failure_without_a_signal_is_a_launch_error() -> None:
    info = SlurmJob("7", "FAILED", "JobLaunchFailure", exit_code=1).exit_info()
    assert info.launch_failed and not info.lost


def test_squeue_lists_every_state_including_finished_jobs() -> None:
    jobs = parse_squeue((DATA / "squeue-all.txt").read_text())
    assert {job_id: job.state for job_id, job in jobs.items()} == {
        "1": "FAILED", "2": "PENDING", "3": "RUNNING", "4": "COMPLETED", "5": "FAILED",
        "6": "FAILED", "7": "COMPLETING", "8": "SUSPENDED", "9": "RUNNING",
        "10": "OUT_OF_MEMORY",
    }  # fmt: skip
    assert jobs["7"].ran is False and not jobs["7"].ended  # COMPLETING: not final yet
    assert jobs["2"].reason == "BeginTime"


def test_state_flags_and_cancellers_are_dropped() -> None:
    assert base_state("CANCELLED by 0") == "CANCELLED"
    assert base_state("COMPLETING+") == "COMPLETING"
    assert base_state("") == ""


def test_sacct_parsable_output_skips_steps() -> None:
    # sacct -P -n -X -o JobID,State,ExitCode,Start,End (the layout; not recorded here: the
    # test cluster runs without slurmdbd, so sacct has no data).
    text = (
        "42|CANCELLED by 0|0:15|2026-12-01T09:00:00|2026-12-01T09:01:00\n"
        "42.batch|CANCELLED|0:15|2026-12-01T09:00:00|2026-12-01T09:01:00\n"
        "43|TIMEOUT|0:0|2026-12-01T09:00:00|2026-12-01T10:00:00\n"
    )
    jobs = parse_sacct(text)
    assert set(jobs) == {"42", "43"}
    assert jobs["42"].exit_info().stopped is TerminationReason.USER_STOP
    assert jobs["43"].exit_info().stopped is TerminationReason.TIME_LIMIT


def test_scontrol_of_several_jobs_keys_them_by_id() -> None:
    text = "".join((DATA / f"scontrol-{n}.txt").read_text() for n in ("run", "comp", "fail"))
    assert sorted(parse_scontrol(text), key=int) == ["3", "4", "5"]
