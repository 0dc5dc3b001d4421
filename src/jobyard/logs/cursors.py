"""Cursors into a job's output: where a reader starts (an offset, or the last N lines)."""

from __future__ import annotations

import os

from jobyard.domain.errors import InvalidArgument

TAIL_BLOCK_BYTES = 64 * 1024


def tail_offset(fd: int, end: int, lines: int, block: int = TAIL_BLOCK_BYTES) -> int:
    """The offset where the last ``lines`` lines of ``fd[0:end]`` start.

    Scans backwards from ``end`` one block at a time, so the cost is proportional to the
    tail, not to the file. A newline as the very last byte ends the last line rather than
    starting an empty one; output with fewer lines than asked for starts at 0.
    """
    if lines <= 0:
        return end
    # The tail starts after the lines-th newline from the end, not counting a newline in
    # the very last byte (it ends the last line rather than starting an empty one).
    wanted = lines
    pos = end - 1 if end and os.pread(fd, 1, end - 1) == b"\n" else end
    while pos > 0:
        start = max(0, pos - block)
        data = os.pread(fd, pos - start, start)
        found = data.count(b"\n")
        if found >= wanted:
            cut = len(data)
            for _ in range(wanted):
                cut = data.rindex(b"\n", 0, cut)
            return start + cut + 1
        wanted -= found
        pos = start
    return 0


def check_start(offset: int, tail_lines: int, size: int) -> None:
    """Refuse a start the output cannot have: negative, or past what was written so far."""
    if tail_lines < 0:
        raise InvalidArgument(f"tailLines must not be negative (got {tail_lines})")
    if offset < 0:
        raise InvalidArgument(f"offset must not be negative (got {offset})")
    if tail_lines == 0 and offset > size:
        raise InvalidArgument(
            f"offset {offset} is past the end of the job's output ({size} bytes so far)"
        )
