"""Volume sizes and resource names (pure)."""

from __future__ import annotations

import pytest

from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import JobSpec
from jobyard.domain.resources import (
    check_name,
    format_size,
    job_addresses,
    parse_cidr,
    parse_size,
)
from jobyard.engine.attachments import Attached, NoAttachments

GIB = 1 << 30


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500 << 20), ("1GB", GIB), ("1GiB", GIB), ("64M", 64 << 20), (" 2 gb ", 2 * GIB),
     (str(16 << 20), 16 << 20)],
)  # fmt: skip
def test_sizes_are_binary_units(text: str, size: int) -> None:
    assert parse_size(text, 10 * GIB) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "invalid size ''"), ("1.5GB", "invalid size '1.5GB'"), ("1PB", "invalid size"),
     ("4MB", "must be between 8MB and 10240MB"), ("11GB", "must be between 8MB and 10240MB")],
)  # fmt: skip
def test_bad_sizes_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_size(text, 10 * GIB)


def test_sizes_print_in_the_largest_whole_unit() -> None:
    assert [format_size(s) for s in (GIB, 1536 << 20, 8 << 20, 1000)] == [
        "1GB", "1536MB", "8MB", "1000B",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "x" * 65, "a b"])
def test_names_that_are_not_one_path_component_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="letters, digits"):
        check_name("volume", name)


async def test_without_a_registry_naming_a_volume_runtime_or_network_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"^volume not found: v$"):
        NoAttachments().check(JobSpec("true", volumes=("v",)), None)
    with pytest.raises(NotFound, match=r"^runtime not found: r$"):
        await NoAttachments().attach("j", JobSpec("true", runtime_env="r"))
    with pytest.raises(NotFound, match=r"^network not found: backend$"):
        NoAttachments().check(JobSpec("true", network="backend"), None)
    assert await NoAttachments().attach("j", JobSpec("true", network="isolated")) == Attached()


@pytest.mark.parametrize(
    ("cidr", "message"),
    [("10.10.0.1/24", "has host bits set"), ("8.8.8.0/24", "use a private range"),
     ("127.0.0.0/16", "use a private range"), ("10.0.0.0/8", "the prefix must be /16 to /29"),
     ("10.0.0.0/30", "the prefix must be /16 to /29"), ("nope", "invalid cidr 'nope'")],
)  # fmt: skip
def test_network_ranges_are_private_and_sized(cidr: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_cidr(cidr)


def test_jobs_get_addresses_after_the_reserved_first_one() -> None:
    got = [str(a) for a in job_addresses(parse_cidr("192.168.7.0/29"))]
    assert got == [f"192.168.7.{i}/29" for i in range(2, 7)]
