"""The cgroup drivers over fake cgroup trees: exactly what each kernel file receives."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from jobyard.domain.errors import FailedPrecondition, InvalidArgument, LaunchError
from jobyard.domain.jobs import Resources
from jobyard.runtime.base import Usage
from jobyard.runtime.local import cgroups
from jobyard.runtime.local.cgroups import (
    CgroupV1,
    CgroupV2,
    Limits,
    block_device_of,
    detect_cgroups,
    parse_mountinfo,
)

MIB = 1024 * 1024
ALL_LIMITS = Limits(
    cpu_percent=50,
    cpu_cores="0-1",
    memory_bytes=64 * MIB,
    io_bps=1000,
    io_device="8:0",
    max_pids=100,
)


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def text(path: Path) -> str:
    return path.read_text()


@pytest.fixture(autouse=True)
def fake_kernel_rmdir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Removing a cgroup directory takes its (kernel-made) files along, not its children."""

    def rmdir(path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
        if any(child.is_dir() for child in path.iterdir()):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        shutil.rmtree(path)

    monkeypatch.setattr(cgroups, "_rmdir", rmdir)


def fail_writes_to(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the kernel refuse one file of job1, as it does for a value it rejects."""
    real_write = cgroups._write

    def write(path: Path, value: str) -> None:
        if path.name == name and path.parent.name == "job1":
            raise OSError(errno.EINVAL, "Invalid argument")
        real_write(path, value)

    monkeypatch.setattr(cgroups, "_write", write)


# -- v2 ---------------------------------------------------------------------------------


@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    put(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    put(root / "cgroup.subtree_control", "\n")
    # What the kernel shows in any non-root cgroup when swap accounting is on.
    put(root / "jobyard" / "memory.swap.max", "max\n")
    return root


def test_v2_create_writes_every_limit_and_enables_controllers(v2_root: Path) -> None:
    job = CgroupV2(v2_root).create("job1", ALL_LIMITS)

    path = v2_root / "jobyard" / "job1"
    assert text(v2_root / "cgroup.subtree_control") == "+cpu +cpuset +memory +io +pids"
    assert text(v2_root / "jobyard" / "cgroup.subtree_control") == "+cpu +cpuset +memory +io +pids"
    assert text(path / "cpu.max") == "50000 100000"
    assert text(path / "cpuset.cpus") == "0-1"
    assert text(path / "memory.max") == str(64 * MIB)
    assert text(path / "memory.swap.max") == "0"
    assert text(path / "pids.max") == "100"
    assert text(path / "io.max") == "8:0 rbps=1000 wbps=1000"
    assert job.procs_files() == [path / "cgroup.procs"]
    assert job.exists()


def test_v2_unlimited_job_gets_max_everywhere(v2_root: Path) -> None:
    CgroupV2(v2_root).create("job1", Limits())

    path = v2_root / "jobyard" / "job1"
    assert text(path / "cpu.max") == "max 100000"
    assert text(path / "memory.max") == "max"
    assert text(path / "pids.max") == "max"
    for absent in ("io.max", "cpuset.cpus", "memory.swap.max"):
        assert not (path / absent).exists(), absent


def test_v2_enables_only_the_missing_controllers(v2_root: Path) -> None:
    put(v2_root / "cgroup.subtree_control", "cpu memory\n")
    CgroupV2(v2_root).create("job1", Limits())
    assert text(v2_root / "cgroup.subtree_control") == "+cpuset +io +pids"


def test_v2_custom_root_name(v2_root: Path) -> None:
    job = CgroupV2(v2_root, root_name="jy").create("job1", Limits())
    assert job.procs_files() == [v2_root / "jy" / "job1" / "cgroup.procs"]


def test_v2_freeze_thaw_and_kill_write_the_control_files(v2_root: Path) -> None:
    job = CgroupV2(v2_root).create("job1", Limits())
    path = v2_root / "jobyard" / "job1"

    job.freeze()
    assert text(path / "cgroup.freeze") == "1"
    put(path / "cgroup.events", "populated 1\nfrozen 0\n")
    assert not job.frozen()  # requested, not yet reached
    put(path / "cgroup.events", "populated 1\nfrozen 1\n")
    assert job.frozen()
    job.thaw()
    assert text(path / "cgroup.freeze") == "0"
    job.kill_all()
    assert text(path / "cgroup.kill") == "1"


def test_v2_reads_oom_kills_and_usage(v2_root: Path) -> None:
    job = CgroupV2(v2_root).create("job1", Limits())
    path = v2_root / "jobyard" / "job1"
    assert job.oom_kills() == 0
    put(path / "memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
    put(path / "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    put(path / "memory.peak", "4096\n")
    put(path / "memory.current", "1024\n")
    put(path / "io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n")

    assert job.oom_kills() == 2
    assert job.usage() == Usage(
        cpu_seconds=2.5, memory_peak_bytes=4096, memory_current_bytes=1024, io_bytes=303
    )


def test_v2_io_limit_without_a_block_device_is_refused(v2_root: Path) -> None:
    with pytest.raises(LaunchError, match=r"maxIOBPS=5.*not on a block device"):
        CgroupV2(v2_root).create("job1", Limits(io_bps=5))
    assert not (v2_root / "jobyard" / "job1").exists()


def test_v2_rejected_limit_names_it_and_removes_the_cgroup(
    v2_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_writes_to(monkeypatch, "pids.max")
    with pytest.raises(LaunchError) as caught:
        CgroupV2(v2_root).create("job1", Limits(max_pids=5))
    assert str(caught.value) == (
        "cannot apply maxPids=5: writing '5' to pids.max failed: Invalid argument"
    )
    assert not (v2_root / "jobyard" / "job1").exists()


def test_v2_refuses_an_existing_job_cgroup(v2_root: Path) -> None:
    (v2_root / "jobyard" / "job1").mkdir()
    with pytest.raises(LaunchError, match="already exists"):
        CgroupV2(v2_root).create("job1", Limits())
    assert (v2_root / "jobyard" / "job1").is_dir()  # not ours to remove


def test_v2_remove_is_idempotent(v2_root: Path) -> None:
    job = CgroupV2(v2_root).create("job1", Limits())
    job.remove()
    assert not job.exists()
    job.remove()


def test_job_ids_must_be_plain_names(v2_root: Path) -> None:
    with pytest.raises(InvalidArgument):
        CgroupV2(v2_root).job("../escape")
    with pytest.raises(InvalidArgument):
        CgroupV2(v2_root, root_name="a/b")


# -- v1 ---------------------------------------------------------------------------------


V1_NAMES = ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "blkio")


@pytest.fixture
def v1_mounts(tmp_path: Path) -> dict[str, Path]:
    mounts = {name: tmp_path / name for name in V1_NAMES}
    for path in mounts.values():
        path.mkdir()
    put(mounts["cpuset"] / "cpuset.cpus", "0-3\n")
    put(mounts["cpuset"] / "cpuset.mems", "0\n")
    put(mounts["memory"] / "memory.memsw.limit_in_bytes", "9223372036854771712\n")
    return mounts


def test_v1_create_writes_every_limit(v1_mounts: dict[str, Path]) -> None:
    job = CgroupV1(v1_mounts).create("job1", ALL_LIMITS)

    def at(name: str) -> Path:
        return v1_mounts[name] / "jobyard" / "job1"

    assert text(at("cpu") / "cpu.cfs_period_us") == "100000"
    assert text(at("cpu") / "cpu.cfs_quota_us") == "50000"
    # A new v1 cpuset is empty: the parent is filled from the root, the job from the parent.
    assert text(v1_mounts["cpuset"] / "jobyard" / "cpuset.cpus") == "0-3"
    assert text(v1_mounts["cpuset"] / "jobyard" / "cpuset.mems") == "0"
    assert text(at("cpuset") / "cpuset.cpus") == "0-1"
    assert text(at("cpuset") / "cpuset.mems") == "0"
    assert text(at("memory") / "memory.limit_in_bytes") == str(64 * MIB)
    assert text(at("memory") / "memory.memsw.limit_in_bytes") == str(64 * MIB)
    assert text(at("pids") / "pids.max") == "100"
    assert text(at("blkio") / "blkio.throttle.read_bps_device") == "8:0 1000"
    assert text(at("blkio") / "blkio.throttle.write_bps_device") == "8:0 1000"
    assert job.procs_files() == [at(name) / "cgroup.procs" for name in job.dirs]
    assert sorted(job.dirs) == sorted(V1_NAMES)


def test_v1_unlimited_job(v1_mounts: dict[str, Path]) -> None:
    CgroupV1(v1_mounts).create("job1", Limits())
    base = v1_mounts["cpu"].parent
    assert text(base / "cpu" / "jobyard" / "job1" / "cpu.cfs_quota_us") == "-1"
    assert text(base / "cpuset" / "jobyard" / "job1" / "cpuset.cpus") == "0-3"
    assert text(base / "pids" / "jobyard" / "job1" / "pids.max") == "max"
    assert not (base / "memory" / "jobyard" / "job1" / "memory.limit_in_bytes").exists()
    assert not (base / "blkio" / "jobyard" / "job1" / "blkio.throttle.read_bps_device").exists()


def test_v1_co_mounted_controllers_share_one_directory(
    v1_mounts: dict[str, Path], tmp_path: Path
) -> None:
    both = tmp_path / "cpu,cpuacct"
    both.mkdir()
    v1_mounts["cpu"] = v1_mounts["cpuacct"] = both
    job = CgroupV1(v1_mounts).create("job1", Limits(cpu_percent=150))
    assert text(both / "jobyard" / "job1" / "cpu.cfs_quota_us") == "150000"
    assert len(job.procs_files()) == len(V1_NAMES) - 1


def test_v1_freezer_and_oom_and_usage(v1_mounts: dict[str, Path]) -> None:
    job = CgroupV1(v1_mounts).create("job1", Limits())

    def at(name: str) -> Path:
        return v1_mounts[name] / "jobyard" / "job1"

    job.freeze()
    assert text(at("freezer") / "freezer.state") == "FROZEN"
    put(at("freezer") / "freezer.state", "FREEZING\n")
    assert not job.frozen()
    put(at("freezer") / "freezer.state", "FROZEN\n")
    assert job.frozen()
    job.thaw()
    assert text(at("freezer") / "freezer.state") == "THAWED"

    put(at("memory") / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    put(at("cpuacct") / "cpuacct.usage", "1500000000\n")
    put(at("memory") / "memory.max_usage_in_bytes", "8192\n")
    put(at("memory") / "memory.usage_in_bytes", "2048\n")
    put(at("blkio") / "blkio.throttle.io_service_bytes", "8:0 Read 10\n8:0 Write 20\nTotal 30\n")
    assert job.oom_kills() == 3
    assert job.usage() == Usage(
        cpu_seconds=1.5, memory_peak_bytes=8192, memory_current_bytes=2048, io_bytes=30
    )


def test_v1_rejected_limit_removes_the_job_from_every_hierarchy(
    v1_mounts: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_writes_to(monkeypatch, "cpuset.cpus")
    with pytest.raises(LaunchError, match=r"^cannot apply cpuCores=63: .*Invalid argument"):
        CgroupV1(v1_mounts).create("job1", Limits(cpu_cores="63"))
    for mount in v1_mounts.values():
        assert not (mount / "jobyard" / "job1").exists(), mount


def test_v1_needs_its_hierarchies(v1_mounts: dict[str, Path]) -> None:
    del v1_mounts["freezer"]
    with pytest.raises(FailedPrecondition, match="freezer"):
        CgroupV1(v1_mounts)


def test_v1_io_limit_needs_blkio(v1_mounts: dict[str, Path]) -> None:
    del v1_mounts["blkio"]
    with pytest.raises(LaunchError, match="maxIOBPS=9: no blkio"):
        CgroupV1(v1_mounts).create("job1", Limits(io_bps=9, io_device="8:0"))
    assert not (v1_mounts["cpu"] / "jobyard" / "job1").exists()


# -- limits -----------------------------------------------------------------------------


def test_limits_from_resources() -> None:
    limits = Limits.from_resources(
        Resources(max_cpu=150, cpu_cores="1", max_memory=10, max_iobps=7, max_pids=0),
        io_device="8:0",
        default_max_pids=256,
    )
    assert limits == Limits(
        cpu_percent=150,
        cpu_cores="1",
        memory_bytes=10 * MIB,
        io_bps=7,
        io_device="8:0",
        max_pids=256,
    )
    assert Limits.from_resources(Resources(max_pids=3), default_max_pids=256).max_pids == 3


# -- detection --------------------------------------------------------------------------


def mountinfo(tmp_path: Path, *lines: str) -> Path:
    return put(tmp_path / "mountinfo", "".join(f"{line}\n" for line in lines))


def test_detect_picks_v2_on_a_cgroup2_mount_with_the_controllers(
    v2_root: Path, tmp_path: Path
) -> None:
    info = mountinfo(tmp_path, f"31 23 0:28 / {v2_root} rw,nosuid - cgroup2 cgroup2 rw")
    driver = detect_cgroups(v2_root, mountinfo=info)
    assert isinstance(driver, CgroupV2)
    assert driver.version == 2


def test_detect_falls_back_to_v1_when_cgroup2_lacks_controllers(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    put(root / "unified" / "cgroup.controllers", "hugetlb\n")
    lines = [
        f"31 23 0:28 / {root} rw - tmpfs tmpfs rw,mode=755",
        f"32 31 0:29 / {root}/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct",
        *(
            f"3{i} 31 0:3{i} / {root}/{name} rw - cgroup cgroup rw,{name}"
            for i, name in enumerate(("cpuset", "memory", "pids", "freezer", "blkio"))
        ),
        f"41 31 0:38 / {root}/systemd rw - cgroup cgroup rw,xattr,name=systemd",
        f"42 31 0:39 / {root}/unified rw - cgroup2 cgroup2 rw",
    ]
    driver = detect_cgroups(root, mountinfo=mountinfo(tmp_path, *lines))
    assert isinstance(driver, CgroupV1)
    assert driver.mounts["cpu"] == driver.mounts["cpuacct"] == root / "cpu acct"
    assert driver.mounts["freezer"] == root / "freezer"
    assert "name=systemd" not in driver.mounts


def test_detect_with_no_cgroups_says_so(tmp_path: Path) -> None:
    info = mountinfo(tmp_path, f"31 23 0:28 / {tmp_path} rw - tmpfs tmpfs rw")
    with pytest.raises(FailedPrecondition, match="no usable cgroups"):
        detect_cgroups(tmp_path, mountinfo=info)


def test_parse_mountinfo_reads_optional_fields() -> None:
    line = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=x"
    [mount] = parse_mountinfo(line)
    assert mount.point == Path("/mnt/a b")
    assert mount.fstype == "ext3"
    assert "errors=x" in mount.options


# -- block devices ----------------------------------------------------------------------


def fake_sys(tmp_path: Path, *, partition: bool) -> Path:
    """A /sys/dev/block entry for the device holding tmp_path."""
    st_dev = os.stat(tmp_path).st_dev
    name = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    sys_root = tmp_path / "sys"
    disk = sys_root / "devices" / "virtual" / "block" / "vdz"
    put(disk / "dev", "254:16\n")
    node = disk / "vdz1" if partition else disk
    if partition:
        put(node / "dev", f"{name}\n")
        put(node / "partition", "1\n")
    else:
        put(node / "dev", f"{name}\n")
    (sys_root / "dev" / "block").mkdir(parents=True)
    (sys_root / "dev" / "block" / name).symlink_to(node)
    return sys_root


def test_block_device_of_a_partition_is_its_disk(tmp_path: Path) -> None:
    assert block_device_of(tmp_path, fake_sys(tmp_path, partition=True)) == "254:16"


def test_block_device_of_a_whole_disk(tmp_path: Path) -> None:
    st_dev = os.stat(tmp_path).st_dev
    expected = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    assert block_device_of(tmp_path, fake_sys(tmp_path, partition=False)) == expected


def test_no_block_device(tmp_path: Path) -> None:
    assert block_device_of(tmp_path, tmp_path / "empty-sys") == ""
