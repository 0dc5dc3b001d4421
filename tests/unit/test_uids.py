"""Who a job runs as: range uids recorded on disk, fixed uids per owner, and refusals."""

from __future__ import annotations

import grp
import pwd
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument, LaunchError
from jobyard.runtime.local.users import (
    JobIds,
    UidPolicy,
    UidRecords,
    _check_no_ids_in,
    parse_uid_range,
)

RANGE = (300100, 300102)


def nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def test_each_job_gets_a_uid_of_its_own_and_gives_it_back(tmp_path: Path) -> None:
    policy = UidPolicy(RANGE, tmp_path / "uids")
    a, b = policy.acquire("job-a", "alice"), policy.acquire("job-b", "alice")
    assert a != b and {a.uid, b.uid} <= set(range(RANGE[0], RANGE[1] + 1))
    assert (a.gid, b.gid) == (a.uid, b.uid)
    policy.release("job-a")
    policy.release("job-a")  # idempotent
    assert policy.records.holder(a.uid) is None
    assert policy.records.holder(b.uid) == "job-b"


def test_records_outlive_the_policy_that_made_them(tmp_path: Path) -> None:
    # A restarted server (a new policy on the same records) never hands out a held uid.
    held = UidPolicy(RANGE, tmp_path).acquire("adopted", "alice")
    again = UidPolicy(RANGE, tmp_path)
    taken = [again.acquire(f"new-{i}", "bob").uid for i in range(2)]
    assert held.uid not in taken
    with pytest.raises(LaunchError, match=r"no free job uid: all 3 of jobUidRange 300100-300102"):
        again.acquire("one-too-many", "bob")
    again.release("adopted")
    assert again.acquire("later", "bob").uid == held.uid


def test_a_freed_uid_is_not_the_next_one_handed_out(tmp_path: Path) -> None:
    records = UidRecords(tmp_path)
    first = records.take("a", *RANGE)
    records.release("a")
    assert records.take("b", *RANGE) != first  # the search goes on past it


def test_fixed_uids_per_owner(tmp_path: Path) -> None:
    policy = UidPolicy(RANGE, tmp_path, {"alice": 1001, "svc": "nobody"})
    assert policy.acquire("j1", "alice") == policy.acquire("j2", "alice") == JobIds(1001, 1001)
    assert policy.acquire("j3", "svc").uid == nobody()
    assert list(tmp_path.iterdir()) == []  # fixed uids take no record
    assert RANGE[0] <= policy.acquire("j4", "carol").uid <= RANGE[1]  # others: the range


@pytest.mark.parametrize(
    ("fixed", "match"),
    [
        ({"alice": 1001, "bob": 1001}, "owners 'alice' and 'bob' both map to uid 1001"),
        ({"alice": "root"}, "never run as root"),
        ({"alice": 0}, "never run as root"),
        ({"alice": RANGE[0]}, "is in jobUidRange"),
        ({"alice": "no-such-account-here"}, "no such user"),
    ],
)
def test_fixed_uid_refusals(tmp_path: Path, fixed: dict[str, str | int], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        UidPolicy(RANGE, tmp_path, fixed)


def test_owner_accounts_map_owners_to_their_local_account(tmp_path: Path) -> None:
    policy = UidPolicy(RANGE, tmp_path, owner_accounts=True)
    assert policy.acquire("j1", "nobody").uid == nobody()
    assert RANGE[0] <= policy.acquire("j2", "no-such-account-here").uid <= RANGE[1]
    with pytest.raises(LaunchError, match="maps to a root account"):
        policy.acquire("j3", "root")


def test_without_a_range_an_unmapped_owner_cannot_run(tmp_path: Path) -> None:
    policy = UidPolicy(None, tmp_path, {"alice": 1001})
    with pytest.raises(LaunchError, match="no uid for owner 'bob'"):
        policy.acquire("j1", "bob")


def test_a_range_holding_an_account_is_refused(tmp_path: Path) -> None:
    uid = nobody()
    with pytest.raises(InvalidArgument, match=f"{uid} is the account 'nobody'; pick ids"):
        UidPolicy((uid - 1, uid + 1), tmp_path)


def test_a_range_holding_a_group_or_container_ids_is_refused(tmp_path: Path) -> None:
    gid = grp.getgrall()[0].gr_gid  # any existing group
    with pytest.raises(InvalidArgument, match=f"{gid} is the (account|group) "):
        _check_no_ids_in(gid, gid, ())
    subuid = tmp_path / "subuid"
    subuid.write_text("alice:100000:65536\nbob:165536:65536\n")
    with pytest.raises(InvalidArgument, match=r"200000 is bob's in .*subuid \(165536-231071\)"):
        _check_no_ids_in(200000, 265535, (subuid,))
    _check_no_ids_in(300000, 365535, (subuid,))  # clear of both


@pytest.mark.parametrize(
    ("text", "expected"),
    [("200000-265535", (200000, 265535)), (" 5 - 5 ", (5, 5)), ("", None)],
)
def test_parse_uid_range(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_uid_range(text) == expected


@pytest.mark.parametrize("text", ["200000", "a-b", "0-10", "10-5", "-5", "1-4294967295"])
def test_parse_uid_range_refusals(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid job uid range"):
        parse_uid_range(text)
