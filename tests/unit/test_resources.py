"""Volume sizes and resource names (pure)."""

from __future__ import annotations

import pytest

from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import JobSpec
from jobyard.domain.resources import check_name, format_size, parse_size
from jobyard.engine.attachments import NoAttachments

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


def test_without_a_registry_naming_a_volume_or_runtime_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"^volume not found: v$"):
        NoAttachments().check(JobSpec("true", volumes=("v",)), None)
    with pytest.raises(NotFound, match=r"^runtime not found: r$"):
        NoAttachments().resolve(JobSpec("true", runtime_env="r"))
    assert NoAttachments().resolve(JobSpec("true")).binds == ()
