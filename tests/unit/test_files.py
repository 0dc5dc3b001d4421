"""JobFiles: listing with SHA-256 and safe reads of a job's work directory (no processes)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument, NotFound, ResourceExhausted
from jobyard.engine import files as files_module
from jobyard.engine.files import JobFiles, relative_parts
from jobyard.logs import JobLayout

JOB = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files another owner")


@pytest.fixture
def layout(tmp_path: Path) -> JobLayout:
    layout = JobLayout(tmp_path / "data")
    layout.prepare()
    layout.create_job_dir(JOB)
    layout.workdir(JOB).mkdir()
    return layout


@pytest.fixture
def work(layout: JobLayout) -> Path:
    return layout.workdir(JOB)


async def read_all(files: JobFiles, path: str) -> tuple[bytes, list[int]]:
    data, offsets = b"", []
    async for offset, chunk in files.read(JOB, path):
        offsets.append(offset)
        data += chunk
    return data, offsets


async def test_lists_regular_files_recursively_with_size_and_sha256(
    layout: JobLayout, work: Path
) -> None:
    (work / "out.txt").write_bytes(b"hello\n")
    (work / "sub" / "deeper").mkdir(parents=True)
    (work / "sub" / "deeper" / "data.bin").write_bytes(b"\x00" * 1000)
    (work / "empty").write_bytes(b"")

    listed = await JobFiles(layout).scan(JOB)

    assert [(f.path, f.size) for f in listed] == [
        ("empty", 0), ("out.txt", 6), ("sub/deeper/data.bin", 1000),
    ]  # fmt: skip
    assert listed[1].sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert listed[1].modified.timestamp() == pytest.approx((work / "out.txt").stat().st_mtime)


async def test_listing_skips_links_fifos_and_never_follows_a_linked_directory(
    layout: JobLayout, work: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    (work / "kept").write_text("yes")
    (work / "link-to-secret").symlink_to(outside / "secret")
    (work / "link-to-dir").symlink_to(outside)
    (work / "link-inside").symlink_to("kept")
    os.mkfifo(work / "fifo")

    listed = await JobFiles(layout).scan(JOB)

    assert [f.path for f in listed] == ["kept"]


@as_root
async def test_files_of_another_owner_are_neither_listed_nor_served(
    layout: JobLayout, work: Path
) -> None:
    os.chown(work, 65534, 65534)
    (work / "mine").write_text("job")
    os.chown(work / "mine", 65534, 65534)
    (work / "planted").write_text("root's")  # stands for a hard link to a root-only file

    files = JobFiles(layout)
    assert [f.path for f in await files.scan(JOB)] == ["mine"]
    with pytest.raises(InvalidArgument, match="not a file of the job"):
        await read_all(files, "planted")


async def test_a_job_without_a_work_directory_has_no_files(layout: JobLayout, work: Path) -> None:
    work.rmdir()
    files = JobFiles(layout)
    assert await files.scan(JOB) == []
    with pytest.raises(NotFound, match="no work directory"):
        await read_all(files, "x")


async def test_hashes_are_cached_until_the_file_changes(layout: JobLayout, work: Path) -> None:
    files = JobFiles(layout)
    (work / "f").write_bytes(b"one")
    first = (await files.scan(JOB))[0].sha256
    assert (await files.scan(JOB))[0].sha256 == first
    (work / "f").write_bytes(b"two")
    assert (await files.scan(JOB))[0].sha256 == hashlib.sha256(b"two").hexdigest()


async def test_too_many_files_are_refused_rather_than_cut(
    layout: JobLayout, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "MAX_LISTED_FILES", 3)
    for i in range(4):
        (work / f"f{i}").write_text("x")
    with pytest.raises(ResourceExhausted, match="more than 3 files"):
        await JobFiles(layout).scan(JOB)


async def test_read_streams_the_file_in_chunks_with_offsets(
    layout: JobLayout, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "FILE_CHUNK_BYTES", 4)
    (work / "sub").mkdir()
    (work / "sub" / "f.txt").write_bytes(b"0123456789")

    data, offsets = await read_all(JobFiles(layout), "./sub//f.txt")

    assert (data, offsets) == (b"0123456789", [0, 4, 8])


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("", "give a file path"),
        ("/etc/passwd", "must be relative"),
        ("../../../etc/passwd", "must not contain '..'"),
        ("sub/../../x", "must not contain '..'"),
        (".", "names the work directory itself"),
        ("a\x00b", "give a file path"),
    ],
)
def test_paths_that_could_escape_are_invalid(path: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        relative_parts(path)


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("link-to-passwd", "symbolic links are not followed"),
        ("link-to-dir/passwd", "symbolic links are not followed"),
        ("link-inside", "symbolic links are not followed"),
        ("fifo", "not a regular file"),
        ("sub", "not a regular file"),
    ],
)
async def test_links_and_special_files_are_refused(
    layout: JobLayout, work: Path, path: str, match: str
) -> None:
    (work / "sub").mkdir()
    (work / "kept").write_text("x")
    (work / "link-to-passwd").symlink_to("/etc/passwd")
    (work / "link-to-dir").symlink_to("/etc")
    (work / "link-inside").symlink_to("kept")
    os.mkfifo(work / "fifo")

    with pytest.raises(InvalidArgument, match=match):
        await read_all(JobFiles(layout), path)


@pytest.mark.parametrize("path", ["missing", "kept/below", "nodir/x"])
async def test_a_missing_file_is_not_found(layout: JobLayout, work: Path, path: str) -> None:
    (work / "kept").write_text("x")
    with pytest.raises(NotFound, match="file not found"):
        await read_all(JobFiles(layout), path)


async def test_a_file_swapped_between_check_and_open_is_refused(
    layout: JobLayout, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (work / "f").write_text("checked")
    (work / "other").write_text("swapped in")
    real_lstat = files_module._lstat_at

    def lstat_then_swap(dir_fd: int, name: str, path: str) -> os.stat_result:
        st = real_lstat(dir_fd, name, path)
        os.replace(work / "other", work / "f")  # the job wins the race
        return st

    monkeypatch.setattr(files_module, "_lstat_at", lstat_then_swap)
    with pytest.raises(InvalidArgument, match="changed while opened"):
        await read_all(JobFiles(layout), "f")
