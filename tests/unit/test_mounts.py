"""The order and content of a job's mounts (what the supervisor's one `mount --all` does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import JobSpec
from jobyard.runtime.base import LaunchRequest
from jobyard.runtime.local import LocalRuntimeConfig
from jobyard.runtime.local.mounts import (
    JobView,
    Mount,
    check_hideable,
    host_run_keeps,
    rank_mounts,
)

JOB = "0b7e1a52-0000-4000-8000-000000000001"


def request(data: Path) -> LaunchRequest:
    job = data / "jobs" / JOB
    return LaunchRequest(JOB, JobSpec("true"), job / "output.log", job / "run", job / "work")


def targets(entries: list[Mount]) -> list[str]:
    return [entry.target for entry in entries]


def test_binds_from_the_data_dir_come_before_it_is_hidden_and_tmp_comes_last() -> None:
    data = Path("/var/lib/jobyard")
    req = request(data)
    volume = Mount.bind("/srv/volumes/v1", "/volumes/v1")
    entries = rank_mounts(req, req.state_dir, JobView(200001, 200001, (data,)), [volume])
    order = targets(entries)
    assert order[:8] == ["/run", "/run/jobyard", "/run/jobyard/rank.txt", "/etc/ucloud",
                         "/etc/ucloud/rank.txt", "/volumes/v1", "/work", "/."]  # fmt: skip
    assert order[8] == str(data)  # hidden once every bind from it is made
    assert order[-1] == "/tmp"
    hide = entries[8]
    assert (hide.fstype, hide.options.split(",")[0]) == ("tmpfs", "ro")
    run = entries[0]
    assert "uid=200001,gid=200001" in run.options  # the job's own /run
    work = entries[6]
    assert (work.source, work.options) == (str(req.workdir), "bind,nosuid,nodev")
    assert entries[7].options == "remount,bind,ro"  # the host's root, read-only


@pytest.mark.parametrize("data", ["/tmp/pytest/data", "/work/tmp-xyz/data", "/var/tmp/d"])
def test_a_data_dir_under_a_private_mount_needs_no_hiding(data: str) -> None:
    req = request(Path(data))
    order = targets(rank_mounts(req, req.state_dir, JobView(1, 1, (Path(data),))))
    assert data not in order


def test_fstab_fields_escape_blanks() -> None:
    line = Mount.bind("/data dir/x", "/work").line()
    assert line == "/data\\040dir/x /work none bind,ro,nosuid,nodev,noexec 0 0"


@pytest.mark.parametrize("path", ["/", "/var", "/etc", "/run/x/..", "/dev"])
def test_a_dir_holding_the_jobs_mount_points_cannot_be_hidden(path: str) -> None:
    with pytest.raises(InvalidArgument, match="it holds their"):
        check_hideable(Path(path).resolve() if ".." in path else Path(path))


def test_the_runtime_config_checks_what_it_hides() -> None:
    with pytest.raises(InvalidArgument, match="it holds their /var/tmp"):
        LocalRuntimeConfig(hidden=(Path("/var"),))
    with pytest.raises(InvalidArgument, match="must be absolute"):
        LocalRuntimeConfig(hidden=(Path("data"),))
    assert LocalRuntimeConfig(hidden=(Path("/var/lib/jobyard"),)).hidden


def test_the_private_run_keeps_the_hosts_resolver_directory(tmp_path: Path) -> None:
    req = request(Path("/var/lib/jobyard"))
    view = JobView(1, 1, run_keeps=("/run/systemd/resolve",))
    entries = rank_mounts(req, req.state_dir, view)
    stage = str(req.state_dir / "host-run-0")
    assert (entries[0].source, entries[0].target) == ("/run/systemd/resolve", stage)
    assert entries[1].target == "/run"  # the tmpfs, after the staging bind...
    assert (entries[2].source, entries[2].target) == (stage, "/run/systemd/resolve")
    assert entries[2].options.startswith("bind,ro,")  # ...then the kept dir, read-only


def test_host_run_keeps_follows_resolv_conf_into_run(tmp_path: Path) -> None:
    run_link = tmp_path / "resolv.conf"
    run_link.symlink_to("/run/systemd/resolve/stub-resolv.conf")
    assert host_run_keeps(str(run_link)) == ("/run/systemd/resolve",)
    plain = tmp_path / "plain.conf"
    plain.write_text("nameserver 10.0.0.1\n")
    assert host_run_keeps(str(plain)) == ()


def test_a_host_mqueue_is_replaced_by_the_jobs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: p == "/dev/mqueue" or real_isdir(p))
    req = request(Path("/var/lib/jobyard"))
    entries = rank_mounts(req, req.state_dir, JobView(1, 1))
    [mqueue] = [m for m in entries if m.target == "/dev/mqueue"]
    assert mqueue.fstype == "mqueue"  # mounted in the job's IPC namespace: its queues only
    assert targets(entries).index("/dev/mqueue") > targets(entries).index("/.")
