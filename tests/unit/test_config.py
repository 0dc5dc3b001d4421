"""Server configuration: the seed's joblet-config.yml keys, durations and refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jobyard.config import (
    GrpcConfig,
    JobletConfig,
    JobyardConfig,
    ServerConfig,
    backend_names,
    load_config,
    parse_duration,
)
from jobyard.domain.errors import InvalidArgument

SEED_YAML = """\
joblet:
  defaultCpuLimit: 100        # Default CPU percentage
  defaultMemoryLimit: 512     # Default memory in MB
  defaultIoLimit: 0           # Default I/O limit (0=unlimited)
  maxConcurrentJobs: 100      # Maximum concurrent jobs
  jobTimeout: "1h"            # Maximum job runtime
  cleanupTimeout: "5s"        # Resource cleanup timeout

grpc:
  maxRecvMsgSize: 524288      # 512KB max receive message
  maxSendMsgSize: 4194304     # 4MB max send message
  keepAliveTime: "30s"        # Connection keep-alive
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "joblet-config.yml"
    path.write_text(textwrap.dedent(text))
    return path


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        load_config(write(tmp_path, text), data_dir=tmp_path)
    return str(info.value)


# -- defaults --------------------------------------------------------------------------------


def test_defaults_match_the_seed(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    assert config.data_dir == tmp_path
    assert config.listen == "127.0.0.1:50051"
    j = config.joblet
    assert (j.default_cpu_limit, j.default_memory_limit, j.default_io_limit) == (100, 512, 0)
    assert j.max_concurrent_jobs == 100
    assert j.cleanup_timeout_seconds == pytest.approx(0.1)  # the seed's 100 ms stop grace
    assert j.job_timeout_seconds == 0
    g = config.grpc
    assert (g.max_recv_msg_size, g.max_send_msg_size) == (524288, 4194304)
    assert g.keep_alive_time_seconds == 30
    assert config.jobyard.job_uid_range == "200000-265535"
    assert (config.jobyard.job_uids, config.jobyard.job_owner_accounts) == ({}, False)
    assert config.certs_dir is None
    assert config.insecure_dev is False


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), data_dir=tmp_path)
    assert config == load_config(None, data_dir=tmp_path)


# -- the seed's file ---------------------------------------------------------------------------


def test_seed_file_is_parsed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED_YAML), data_dir=tmp_path)
    assert config.joblet == JobletConfig(
        default_cpu_limit=100,
        default_memory_limit=512,
        default_io_limit=0,
        max_concurrent_jobs=100,
        job_timeout_seconds=3600,
        cleanup_timeout_seconds=5,
    )
    assert config.grpc == GrpcConfig(524288, 4194304, 30)


def test_values_other_than_the_defaults_are_taken(tmp_path: Path) -> None:
    text = """\
        joblet:
          defaultCpuLimit: 250
          defaultMemoryLimit: 2048
          defaultIoLimit: 1000000
          maxConcurrentJobs: 3
          jobTimeout: 90m
          cleanupTimeout: 250ms
        grpc:
          keepAliveTime: 2m
        jobyard:
          backend: slurm
          jobUidRange: "300000-300999"
          jobUids: {alice: 1001, bob: build}
          jobOwnerAccounts: true
          cgroupRoot: yard
          defaultMaxPids: 64
    """
    config = load_config(write(tmp_path, text), data_dir=tmp_path)
    j = config.joblet
    assert (j.default_cpu_limit, j.default_memory_limit, j.default_io_limit) == (
        250,
        2048,
        1000000,
    )
    assert j.max_concurrent_jobs == 3
    assert j.job_timeout_seconds == 5400
    assert j.cleanup_timeout_seconds == pytest.approx(0.25)
    assert config.grpc.keep_alive_time_seconds == 120
    assert config.grpc.max_recv_msg_size == 524288  # untouched keys keep their default
    assert config.jobyard == JobyardConfig(
        backend="slurm",
        job_uid_range="300000-300999",
        job_uids={"alice": 1001, "bob": "build"},
        job_owner_accounts=True,
        cgroup_root="yard",
        default_max_pids=64,
    )


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("jobUser: nobody", "jobUser/jobGroup are replaced.*jobUidRange.*jobUids"),
        ("jobGroup: nogroup", "jobUser/jobGroup are replaced"),
        ("jobUids: [alice]", "jobUids: must map owner names"),
        ("jobUids: {alice: [1]}", "owner 'alice': give a user name or uid"),
        ("jobOwnerAccounts: yes-please", "jobOwnerAccounts: must be true or false"),
    ],
)
def test_job_user_keys_refused_with_what_to_use(tmp_path: Path, line: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        load_config(write(tmp_path, f"jobyard:\n  {line}\n"), data_dir=tmp_path)


def test_bare_numbers_are_seconds(tmp_path: Path) -> None:
    text = """\
        joblet:
          jobTimeout: 7200
          cleanupTimeout: 0.5
    """
    config = load_config(write(tmp_path, text), data_dir=tmp_path)
    assert config.joblet.job_timeout_seconds == 7200
    assert config.joblet.cleanup_timeout_seconds == pytest.approx(0.5)


def test_overrides_apply_and_none_overrides_are_ignored(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, SEED_YAML),
        data_dir=tmp_path,
        listen="0.0.0.0:6000",
        certs_dir=None,
        insecure_dev=True,
    )
    assert isinstance(config, ServerConfig)
    assert config.listen == "0.0.0.0:6000"
    assert config.certs_dir is None
    assert config.insecure_dev is True
    assert config.joblet.cleanup_timeout_seconds == 5


# -- refusals ----------------------------------------------------------------------------------


def test_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    message = refused(tmp_path, "joblet:\n  defaultCpuLimt: 100\n")
    assert "joblet.defaultCpuLimt" in message
    assert "defaultCpuLimit" in message  # the known keys are listed


def test_unknown_key_in_an_own_section_is_refused_by_name(tmp_path: Path) -> None:
    assert "jobyard.jobUsr" in refused(tmp_path, "jobyard:\n  jobUsr: x\n")


def test_unknown_section_is_refused_by_name(tmp_path: Path) -> None:
    message = refused(tmp_path, SEED_YAML + "logging:\n  level: debug\n")
    assert "logging" in message


def test_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert "grpc" in refused(tmp_path, "grpc: 5\n")


def test_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, "- joblet\n- grpc\n")


def test_broken_yaml_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, "joblet: [unclosed\n")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"nope\.yml"):
        load_config(tmp_path / "nope.yml", data_dir=tmp_path)


def test_non_numeric_limit_is_refused_by_name(tmp_path: Path) -> None:
    assert "joblet.defaultMemoryLimit" in refused(tmp_path, "joblet:\n  defaultMemoryLimit: lots\n")


def test_bad_duration_is_refused_by_name(tmp_path: Path) -> None:
    # The user must learn which key is wrong, not only which value.
    message = refused(tmp_path, "joblet:\n  jobTimeout: forever\n")
    assert "forever" in message
    assert "joblet.jobTimeout" in message


def test_zero_concurrent_jobs_is_refused(tmp_path: Path) -> None:
    assert "maxConcurrentJobs" in refused(tmp_path, "joblet:\n  maxConcurrentJobs: 0\n")


def test_data_dir_is_required(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="data directory"):
        load_config(write(tmp_path, SEED_YAML))
    with pytest.raises(InvalidArgument, match="data directory"):
        load_config(None, data_dir=None)


# -- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1h", 3600),
        ("1d", 86400),
        ("100ms", 0.1),
        ("1.5s", 1.5),
        ("0", 0),
        ("45", 45),
        (" 5s ", 5),
        (45, 45),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "5 minutes", "1h30m", "s", "-5s", "-1", "5x", "1e3", "inf", "nan", "5.s"],
)
def test_parse_duration_refuses_garbage(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [-1, -0.5, True, None])
def test_parse_duration_refuses_negative_and_non_durations(value: object) -> None:
    with pytest.raises(InvalidArgument):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_parse_duration_refuses_non_finite_numbers(value: float) -> None:
    # YAML spells these .nan and .inf; neither is a usable timeout.
    with pytest.raises(InvalidArgument):
        parse_duration(value)


@pytest.mark.parametrize(
    "key", ["defaultCpuLimit", "defaultMemoryLimit", "defaultIoLimit", "defaultMaxPids"]
)
def test_negative_default_limit_is_refused_by_name(tmp_path: Path, key: str) -> None:
    # Accepted, it would make every job that leaves the limit out fail validation.
    section = "jobyard" if key == "defaultMaxPids" else "joblet"
    assert key in refused(tmp_path, f"{section}:\n  {key}: -1\n")


def test_non_finite_yaml_duration_is_refused(tmp_path: Path) -> None:
    assert "jobTimeout" in refused(tmp_path, "joblet:\n  jobTimeout: .nan\n")


def test_backends_default_first_then_those_listed(tmp_path: Path) -> None:
    text = """\
        jobyard:
          backend: slurm
          backends: [local, slurm]
        slurm:
          partition: debug
          sharedDir: /shared/jobyard
          defaultTimeLimit: 2h
    """
    config = load_config(write(tmp_path, text), data_dir=tmp_path)
    assert backend_names(config.jobyard) == ("slurm", "local")
    assert config.slurm.partition == "debug"
    assert config.slurm.shared_dir == Path("/shared/jobyard")
    assert config.slurm.default_time_limit_seconds == 7200
    # --backend overrides the config's default.
    local = load_config(write(tmp_path, text), data_dir=tmp_path, backend="local")
    assert backend_names(local.jobyard) == ("local", "slurm")


def test_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"unknown backend 'pbs' \(known: local, slurm\)"):
        load_config(write(tmp_path, "jobyard:\n  backends: [local, pbs]\n"), data_dir=tmp_path)
