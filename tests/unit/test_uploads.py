"""Upload paths and bounds (pure): nothing may land outside the job's work directory."""

from __future__ import annotations

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.uploads import Upload, select, top_level, validate_uploads


def test_paths_are_normalized_and_modes_keep_permission_bits_only() -> None:
    (script, folder) = validate_uploads(
        [Upload("./bin//run.sh", b"x", 0o4755), Upload("data/", is_directory=True)], 0
    )
    assert (script.path, script.permissions) == ("bin/run.sh", 0o755)  # no setuid
    assert (folder.path, folder.permissions) == ("data", 0o755)
    assert Upload("a").permissions == 0o644


@pytest.mark.parametrize(
    ("uploads", "message"),
    [
        ([Upload("../x")], "must stay inside the job's /work"),
        ([Upload("a/../../x")], "must stay inside the job's /work"),
        ([Upload("/abs")], "must be relative"),
        ([Upload("a\\b")], "must be relative"),
        ([Upload("")], "empty, too long or with NUL"),
        ([Upload("a\x00b")], "empty, too long or with NUL"),
        ([Upload("a"), Upload("./a")], "a is sent twice"),
        ([Upload("a", b"x"), Upload("a/b", b"y")], "a is a file and a directory"),
        ([Upload("d", b"x", is_directory=True)], "a directory has no content"),
        ([Upload("big", b"x" * 11)], "11 bytes exceed the server's limit of 10"),
    ],
)
def test_unsafe_or_oversized_uploads_are_refused(uploads: list[Upload], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("\\", "\\\\")):
        validate_uploads(uploads, 10)


def test_a_workflow_job_gets_what_it_names_and_what_is_under_it() -> None:
    sent = validate_uploads(
        [Upload("in.txt", b"1"), Upload("lib", is_directory=True), Upload("lib/a.py", b"2"),
         Upload("other.txt", b"3")], 0,
    )  # fmt: skip
    chosen = select(sent, ["lib", "./in.txt"])
    assert sorted(u.path for u in chosen) == ["in.txt", "lib", "lib/a.py"]
    assert top_level(chosen) == ("lib", "in.txt")  # in the order the job names them
    with pytest.raises(InvalidArgument, match="upload 'missing' was not sent with the workflow"):
        select(sent, ["missing"])
