"""Resolve the unprivileged user and group jobs run as (names or numbers, never root)."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable

from jobyard.domain.errors import InvalidArgument


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
