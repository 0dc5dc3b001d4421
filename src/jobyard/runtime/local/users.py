"""Who jobs run as: a uid and gid of their own from a range, or a fixed one per owner
(names or numbers, never root)."""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import pwd
from collections.abc import Callable, Mapping
from pathlib import Path

from jobyard.domain.errors import InvalidArgument, LaunchError


def resolve_uid(user: str | int) -> int:
    """The uid of ``user`` (a name such as ``"nobody"`` or a number); refuses root."""
    uid = _resolve(user, "user", lambda name: pwd.getpwnam(name).pw_uid)
    if uid == 0:
        raise InvalidArgument(f"invalid job user {user!r}: jobs must never run as root (uid 0)")
    return uid


def resolve_gid(group: str | int) -> int:
    """The gid of ``group`` (a name such as ``"nogroup"`` or a number); refuses gid 0.

    Group 0 owns files root means to share only with administrators, so a job must not
    carry it either.
    """
    gid = _resolve(group, "group", lambda name: grp.getgrnam(name).gr_gid)
    if gid == 0:
        raise InvalidArgument(f"invalid job group {group!r}: jobs must never run as gid 0")
    return gid


def _resolve(value: str | int, what: str, lookup: Callable[[str], int]) -> int:
    if isinstance(value, bool):
        raise InvalidArgument(f"invalid job {what} {value!r}")
    if isinstance(value, int):
        number = value
    elif value.strip().isdigit():
        number = int(value.strip())
    else:
        try:
            number = lookup(value)
        except KeyError:
            raise InvalidArgument(f"invalid job {what} {value!r}: no such {what}") from None
    if not 0 <= number < 2**32 - 1:
        raise InvalidArgument(f"invalid job {what} {value!r}: out of range")
    return number


@dataclasses.dataclass(frozen=True, slots=True)
class JobIds:
    """The uid and gid one job runs as."""

    uid: int
    gid: int


def parse_uid_range(value: str) -> tuple[int, int] | None:
    """``"200000-265535"`` -> (200000, 265535); ``""`` -> None (no range)."""
    text = value.strip()
    if not text:
        return None
    first, sep, last = text.partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise InvalidArgument(
            f"invalid job uid range {value!r}: use FIRST-LAST, e.g. 200000-265535"
        )
    low, high = int(first), int(last)
    if not 0 < low <= high < 2**32 - 1:
        raise InvalidArgument(
            f"invalid job uid range {value!r}: must be 1-4294967294, FIRST <= LAST"
        )
    return low, high


class UidPolicy:
    """Who each job runs as: a fixed uid for its owner (by config), else a uid of its own
    from the range, recorded by :class:`UidRecords` while the job holds it.

    Never root, never a uid of the range for a fixed owner, never one fixed uid for two
    owners: each is refused when the policy is made.
    """

    def __init__(
        self,
        uid_range: tuple[int, int] | None,
        records: Path,
        fixed: Mapping[str, str | int] | None = None,
        owner_accounts: bool = False,
    ) -> None:
        self.uid_range, self.owner_accounts = uid_range, owner_accounts
        self.records = UidRecords(records)
        if uid_range is not None:
            _check_no_ids_in(*uid_range)
        self.fixed = {owner: self._fixed_ids(owner, user) for owner, user in (fixed or {}).items()}
        seen: dict[int, str] = {}
        for owner, ids in self.fixed.items():
            if ids.uid in seen:
                raise InvalidArgument(
                    f"invalid jobUids: owners {seen[ids.uid]!r} and {owner!r} both map to "
                    f"uid {ids.uid}; one uid is for one owner"
                )
            seen[ids.uid] = owner

    def _fixed_ids(self, owner: str, user: str | int) -> JobIds:
        uid = resolve_uid(user)
        if self.uid_range and self.uid_range[0] <= uid <= self.uid_range[1]:
            raise InvalidArgument(f"invalid job uid {uid} for owner {owner!r}: it is in "
                                  "jobUidRange, where jobs get uids of their own")  # fmt: skip
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid  # no account: a group of the same number, as range uids get
        return JobIds(uid, resolve_gid(gid))

    def acquire(self, job_id: str, owner: str) -> JobIds:
        """The ids ``job_id`` runs as (recorded when taken from the range)."""
        ids = self.fixed.get(owner) or self._account(owner)
        if ids is not None:
            return ids
        if self.uid_range is None:
            raise LaunchError(f"no uid for owner {owner!r}: not in jobUids and no jobUidRange")
        uid = self.records.take(job_id, *self.uid_range)
        return JobIds(uid, uid)

    def _account(self, owner: str) -> JobIds | None:
        if not self.owner_accounts:
            return None
        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            return None
        if entry.pw_uid == 0 or entry.pw_gid == 0:
            raise LaunchError(f"owner {owner!r} maps to a root account: refused")
        if self.uid_range and self.uid_range[0] <= entry.pw_uid <= self.uid_range[1]:
            raise LaunchError(f"owner {owner!r} maps to uid {entry.pw_uid} in jobUidRange: refused")
        return JobIds(entry.pw_uid, entry.pw_gid)

    def release(self, job_id: str) -> None:
        self.records.release(job_id)


SUBORDINATE_ID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))


def _check_no_ids_in(
    first: int, last: int, subordinate: tuple[Path, ...] = SUBORDINATE_ID_FILES
) -> None:
    """A range uid (and the gid of its number) must be no one else's: refuse a range that
    holds an account, a group, or ids delegated to a user's containers (/etc/subuid,
    /etc/subgid: a container's processes would share a job's uid)."""
    taken = [(e.pw_uid, f"the account {e.pw_name!r}") for e in pwd.getpwall()]
    taken += [(g.gr_gid, f"the group {g.gr_name!r}") for g in grp.getgrall()]
    clashes = [(n, who) for n, who in taken if first <= n <= last]
    for path in subordinate:
        clashes += [(max(start, first), f"{owner}'s in {path} ({start}-{start + count - 1})")
                    for owner, start, count in _subordinate_ranges(path)
                    if start <= last and start + count > first]  # fmt: skip
    if clashes:
        number, who = min(clashes)
        raise InvalidArgument(f"invalid jobUidRange {first}-{last}: {number} is {who}; "
                              "pick ids no account, group or container uses")  # fmt: skip


def _subordinate_ranges(path: Path) -> list[tuple[str, int, int]]:
    """``name:start:count`` lines of /etc/subuid or /etc/subgid (none when absent)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    ranges = []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            ranges.append((fields[0], int(fields[1]), int(fields[2])))
    return ranges


class UidRecords:
    """Which range uid each running job holds: a symlink ``DIR/<uid>`` -> job id.

    On the host's /run (a tmpfs): the records outlive a server restart (adopted jobs keep
    their uid, and no new job gets it) but not a reboot, which ends every job. Creating a
    symlink is atomic and fails when it exists, so two servers on one host sharing the
    directory never hand out one uid twice.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._next: int | None = None  # where the next search starts: recently freed uids wait

    def take(self, job_id: str, first: int, last: int) -> int:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        size = last - first + 1
        start = self._next if self._next is not None and first <= self._next <= last else first
        for step in range(size):
            uid = first + (start - first + step) % size
            try:
                os.symlink(job_id, self.directory / str(uid))
            except FileExistsError:
                continue
            self._next = uid + 1
            return uid
        raise LaunchError(f"no free job uid: all {size} of jobUidRange {first}-{last} are in use")

    def holder(self, uid: int) -> str | None:
        try:
            return os.readlink(self.directory / str(uid))
        except OSError:
            return None

    def release(self, job_id: str) -> None:
        """Free every uid ``job_id`` holds (one, or none: idempotent)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            path = self.directory / name
            with contextlib.suppress(OSError):
                if os.readlink(path) == job_id:
                    path.unlink()
