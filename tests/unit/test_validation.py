"""JobSpec.validate: bad input is refused with InvalidArgument naming what is wrong."""

from __future__ import annotations

import dataclasses

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import (
    MAX_ARGS,
    MAX_ARGV_BYTES,
    MAX_COMMAND_BYTES,
    MAX_CPU_PERCENT_BOUND,
    MAX_DISK_MB_BOUND,
    MAX_ENV_BYTES,
    MAX_ENV_VARS,
    MAX_MEMORY_MB_BOUND,
    MAX_NAME_CHARS,
    MAX_PIDS_BOUND,
    JobSpec,
    ProductRef,
    Resources,
)

SECRET = "hunter2-very-secret-value"


def good_spec(**changes: object) -> JobSpec:
    spec = JobSpec(
        command="python3",
        args=("-c", "print('hi')"),
        name="nightly-build.v2:x_1",
        resources=Resources(max_cpu=150, cpu_cores="0-1,3", max_memory=1024, max_iobps=10**6),
        environment={"PATH": "/usr/bin", "_UNDER": "", "MIXED_case9": "a=b c"},
        secret_environment={"API_TOKEN": SECRET},
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def refused(spec: JobSpec) -> str:
    with pytest.raises(InvalidArgument) as info:
        spec.validate()
    return str(info.value)


def test_a_normal_spec_is_accepted() -> None:
    good_spec().validate()
    JobSpec(command="true").validate()


@pytest.mark.parametrize("command", ["", " ", "\t\n "])
def test_empty_or_blank_command_is_refused(command: str) -> None:
    assert "command" in refused(good_spec(command=command))


def test_oversize_command_is_refused() -> None:
    assert "command" in refused(good_spec(command="x" * (MAX_COMMAND_BYTES + 1)))


def test_nul_in_command_is_refused() -> None:
    assert "command" in refused(good_spec(command="ls\x00-la"))


def test_nul_in_an_arg_names_the_arg() -> None:
    assert "args[1]" in refused(good_spec(args=("ok", "bad\x00arg")))


def test_nul_in_env_value_names_the_key_and_hides_the_value() -> None:
    message = refused(good_spec(environment={"HOME": "/home/x\x00" + SECRET}))
    assert "HOME" in message
    assert SECRET not in message


def test_nul_in_secret_env_value_never_shows_the_secret() -> None:
    message = refused(good_spec(secret_environment={"API_TOKEN": SECRET + "\x00tail"}))
    assert "API_TOKEN" in message
    assert SECRET not in message
    assert "tail" not in message


def test_too_many_args_is_refused() -> None:
    message = refused(good_spec(args=("a",) * (MAX_ARGS + 1)))
    assert "args" in message


def test_args_at_the_count_limit_are_accepted() -> None:
    good_spec(args=("a",) * MAX_ARGS).validate()


def test_args_over_the_total_byte_limit_are_refused() -> None:
    # Few arguments, but together bigger than the argv limit.
    big = "x" * (MAX_ARGV_BYTES // 4)
    message = refused(good_spec(args=(big, big, big, big)))
    assert "args" in message
    assert str(MAX_ARGV_BYTES) in message


@pytest.mark.parametrize("key", ["1ABC", "A-B", "A B", "", "A=B", "ÄB", "A\x00"])
def test_bad_env_name_is_refused(key: str) -> None:
    message = refused(good_spec(environment={key: "v"}))
    assert "environment" in message
    assert "name" in message


def test_bad_secret_env_name_is_refused_without_the_value() -> None:
    message = refused(good_spec(secret_environment={"BAD-NAME": SECRET}))
    assert "secret_environment" in message
    assert SECRET not in message


def test_too_many_env_vars_is_refused() -> None:
    env = {f"V{i}": "x" for i in range(MAX_ENV_VARS + 1)}
    assert "environment" in refused(good_spec(environment=env))


def test_env_over_the_byte_limit_is_refused_without_the_values() -> None:
    env = {"BIG": SECRET + "x" * MAX_ENV_BYTES}
    message = refused(good_spec(secret_environment=env, environment={}))
    assert "secret_environment" in message
    assert SECRET not in message


def test_key_in_both_env_and_secret_env_is_refused() -> None:
    message = refused(
        good_spec(environment={"TOKEN": "public"}, secret_environment={"TOKEN": SECRET})
    )
    assert "TOKEN" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("field", "wire_name"),
    [
        ("max_cpu", "maxCPU"),
        ("max_memory", "maxMemory"),
        ("max_iobps", "maxIOBPS"),
        ("max_pids", "maxPids"),
        ("max_disk", "maxDisk"),
    ],
)
def test_negative_limit_is_refused(field: str, wire_name: str) -> None:
    resources = dataclasses.replace(Resources(), **{field: -1})
    message = refused(good_spec(resources=resources))
    assert wire_name in message
    assert "negative" in message


@pytest.mark.parametrize(
    ("field", "value", "wire_name"),
    [
        ("max_cpu", MAX_CPU_PERCENT_BOUND + 1, "maxCPU"),
        ("max_memory", MAX_MEMORY_MB_BOUND + 1, "maxMemory"),
        ("max_iobps", 2**31, "maxIOBPS"),
        ("max_pids", MAX_PIDS_BOUND + 1, "maxPids"),
        ("max_disk", MAX_DISK_MB_BOUND + 1, "maxDisk"),
        ("max_memory", 10**18, "maxMemory"),
    ],
)
def test_absurd_limit_is_refused(field: str, value: int, wire_name: str) -> None:
    resources = dataclasses.replace(Resources(), **{field: value})
    message = refused(good_spec(resources=resources))
    assert wire_name in message
    assert str(value) in message


def test_zero_limits_mean_unlimited_and_are_accepted() -> None:
    good_spec(resources=Resources(max_cpu=0, max_memory=0, max_iobps=0, max_pids=0)).validate()


@pytest.mark.parametrize("cores", ["0", "0-3", "0,2", "0-1,4-5,7"])
def test_good_cpu_cores_are_accepted(cores: str) -> None:
    good_spec(resources=Resources(cpu_cores=cores)).validate()


@pytest.mark.parametrize("cores", ["a", "0-", "-1", "0,,1", "0-1-2", "1 2", "0;1", ",0", "0,"])
def test_bad_cpu_cores_syntax_is_refused(cores: str) -> None:
    assert "cpuCores" in refused(good_spec(resources=Resources(cpu_cores=cores)))


def test_reversed_cpu_cores_range_is_refused() -> None:
    # "3-1" is no CPU list the kernel accepts; refusing it here gives the user an
    # INVALID_ARGUMENT instead of a launch failure (and keeps the host check, which only
    # looks at the end of each range, honest).
    assert "cpuCores" in refused(good_spec(resources=Resources(cpu_cores="3-1")))


@pytest.mark.parametrize(
    "name",
    ["-leading-dash", ".hidden", "has space", "slash/name", "x" * (MAX_NAME_CHARS + 1), "a\x00"],
)
def test_bad_name_is_refused(name: str) -> None:
    assert "name" in refused(good_spec(name=name))


def test_longest_allowed_name_is_accepted() -> None:
    good_spec(name="n" * MAX_NAME_CHARS).validate()


def test_empty_name_is_accepted() -> None:
    good_spec(name="").validate()


@pytest.mark.parametrize(
    "spec",
    [
        JobSpec(command="true", name="job\n"),
        JobSpec(command="true", environment={"PATH\n": "/bin"}),
        JobSpec(command="true", secret_environment={"TOKEN\n": SECRET}),
        JobSpec(command="true", resources=Resources(cpu_cores="0\n")),
    ],
    ids=["name", "env-name", "secret-env-name", "cpu-cores"],
)
def test_trailing_newline_is_refused(spec: JobSpec) -> None:
    # "$" in a Python regex also matches before a final newline; the name of an
    # environment variable with a newline in it would reach the job's environ.
    refused(spec)


def test_a_product_reference_is_checked() -> None:
    JobSpec(command="true", product=ProductRef("example-compute-1", "example-compute")).validate()
    for bad in (ProductRef("", "c"), ProductRef("p", "a b"), ProductRef("p", "c", "x\x00")):
        with pytest.raises(InvalidArgument, match="invalid product"):
            JobSpec(command="true", product=bad).validate()
