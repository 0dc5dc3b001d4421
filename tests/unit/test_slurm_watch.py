"""StateWatch: a step's file written on this node wakes the runtime at once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jobyard.runtime.slurm.watch import StateWatch, woken


async def test_a_file_moved_into_a_watched_dir_wakes_its_watchers(tmp_path: Path) -> None:
    watch = StateWatch()
    try:
        with watch.watching([tmp_path]) as changed:
            assert not changed.is_set()
            (tmp_path / "started.tmp").write_text("1.0\n")
            os.replace(tmp_path / "started.tmp", tmp_path / "started")  # as the step writes
            await asyncio.wait_for(changed.wait(), 2.0)
            await woken(changed, 0)
            assert not changed.is_set()  # cleared for the next wake-up
        (tmp_path / "done").write_text("")
        await asyncio.sleep(0.05)
        assert not changed.is_set()  # no longer watched
    finally:
        watch.close()


async def test_a_directory_that_cannot_be_watched_leaves_polling_to_find_it(
    tmp_path: Path,
) -> None:
    watch = StateWatch()
    try:
        with watch.watching([tmp_path / "missing"]) as changed:
            await woken(changed, 0.01)  # returns after the poll delay: nothing raised
            assert not changed.is_set()
    finally:
        watch.close()
