"""Where a reader starts: the last N lines found by scanning backwards, and bad offsets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.logs.cursors import check_start, tail_offset


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[tuple[Path, list[int]]]:
    path = tmp_path / "output.log"
    fds: list[int] = []
    yield path, fds
    for fd in fds:
        os.close(fd)


def tail(opened: tuple[Path, list[int]], data: bytes, lines: int, block: int) -> bytes:
    path, fds = opened
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    fds.append(fd)
    return data[tail_offset(fd, len(data), lines, block=block) :]


def expected_tail(data: bytes, lines: int) -> bytes:
    """The reference answer: split into lines (keeping ends), take the last ``lines``."""
    return b"".join(data.splitlines(keepends=True)[-lines:]) if lines else b""


CASES = [
    b"",
    b"\n",
    b"\n\n\n",
    b"one",
    b"one\n",
    b"one\ntwo",
    b"one\ntwo\n",
    b"a\nb\nc\nd\ne\n",
    b"a\n\nb\n\n",
    b"no newline at all in this rather long text",
    b"x" * 50 + b"\n" + b"y" * 50,
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("lines", [1, 2, 3, 10])
@pytest.mark.parametrize("block", [1, 2, 3, 7, 64 * 1024])
def test_tail_matches_the_last_lines_at_every_block_size(
    opened: tuple[Path, list[int]], data: bytes, lines: int, block: int
) -> None:
    assert tail(opened, data, lines, block) == expected_tail(data, lines)


def test_tail_reads_only_the_end_of_a_large_file(
    opened: tuple[Path, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"".join(f"line {i}\n".encode() for i in range(200_000))
    path, fds = opened
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    fds.append(fd)
    reads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    start = tail_offset(fd, len(data), 10)
    monkeypatch.undo()
    assert data[start:] == expected_tail(data, 10)
    assert sum(reads) <= 64 * 1024 + 1


def test_tail_up_to_an_end_before_the_file_end(opened: tuple[Path, list[int]]) -> None:
    path, fds = opened
    path.write_bytes(b"a\nb\nc\nd\n")
    fd = os.open(path, os.O_RDONLY)
    fds.append(fd)
    assert tail_offset(fd, 4, 1) == 2  # of b"a\nb\n": b"b\n"


@pytest.mark.parametrize(
    ("offset", "tail_lines", "size", "message"),
    [
        (-1, 0, 10, "offset must not be negative"),
        (0, -1, 10, "tailLines must not be negative"),
        (11, 0, 10, "offset 11 is past the end of the job's output (10 bytes so far)"),
    ],
)
def test_impossible_starts_are_refused(
    offset: int, tail_lines: int, size: int, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_start(offset, tail_lines, size)


def test_possible_starts_pass() -> None:
    check_start(10, 0, 10)  # at the end: nothing yet, a follower waits there
    check_start(0, 0, 0)
    check_start(99, 5, 10)  # the offset is ignored with a tail
