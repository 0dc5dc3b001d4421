"""Joblet's named resources that jobs attach: volumes, networks and runtimes.

Each has one server-wide namespace (names as :data:`jobyard.domain.jobs.RESOURCE_NAME`).
Volumes and networks have an owner and a project, and are scoped like jobs
(:func:`jobyard.domain.access.visible`): a user's job may attach only what it may see.
Runtimes are installed by admins and usable by every job.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterator
from datetime import datetime

from jobyard.domain.errors import InvalidArgument, NotFound
from jobyard.domain.jobs import RESOURCE_NAME

VOLUME_FILESYSTEM, VOLUME_MEMORY = "filesystem", "memory"
VOLUME_TYPES = (VOLUME_FILESYSTEM, VOLUME_MEMORY)
MIN_VOLUME_BYTES = 8 << 20  # ext4 needs room for its journal
VOLUMES_DIR = "/volumes"  # where a job sees its volumes: /volumes/NAME
RUNTIME_DIR = "/runtime"  # where a job sees its runtime's tree (read-only)
_SIZE = re.compile(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", re.I)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclasses.dataclass(frozen=True, slots=True)
class Volume:
    name: str
    owner: str
    project: str
    type: str
    size_bytes: int
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Network:
    name: str
    owner: str
    project: str
    cidr: str
    bridge: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RuntimeInfo:
    name: str
    language: str
    version: str
    description: str
    packages: tuple[str, ...]
    test: tuple[str, ...]  # argv TestRuntime runs inside the runtime ("" = check bin/ only)
    size_bytes: int
    created_at: datetime


def check_name(what: str, name: str) -> str:
    if not RESOURCE_NAME.fullmatch(name or ""):
        raise InvalidArgument(
            f"invalid {what} name {name!r}: letters, digits, '.', '_' and '-', starting with "
            "a letter or digit (at most 64)"
        )
    return name


def parse_size(text: str, upper: int) -> int:
    """``"500MB"``, ``"1GB"``, ``"64M"``, ``"1GiB"`` -> bytes (binary units), bounded."""
    match = _SIZE.fullmatch(text or "")
    if not match:
        raise InvalidArgument(f"invalid size {text!r}: expected a number and unit, e.g. 500MB")
    size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if not MIN_VOLUME_BYTES <= size <= upper:
        raise InvalidArgument(
            f"invalid size {text!r}: must be between {MIN_VOLUME_BYTES >> 20}MB and {upper >> 20}MB"
        )
    return size


def format_size(size: int) -> str:
    for unit in ("TB", "GB", "MB", "KB"):
        scale = _UNITS[unit[0]]
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


NETWORK_PREFIXES = range(16, 30)  # /16 (65 534 jobs) .. /29 (5 jobs)


def parse_cidr(text: str) -> ipaddress.IPv4Network:
    """A private IPv4 network such as 10.10.0.0/24 (host bits must be 0)."""
    try:
        network = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid cidr {text!r}: {exc}") from None
    if network.prefixlen not in NETWORK_PREFIXES:
        raise InvalidArgument(
            f"invalid cidr {text!r}: the prefix must be /{NETWORK_PREFIXES[0]} to "
            f"/{NETWORK_PREFIXES[-1]}"
        )
    if not network.is_private or network.is_loopback or network.is_link_local:
        raise InvalidArgument(
            f"invalid cidr {text!r}: use a private range (10.0.0.0/8, 172.16.0.0/12, "
            "192.168.0.0/16): job networks are private to this machine"
        )
    return network


def job_addresses(network: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Interface]:
    """The addresses jobs get, lowest first; the first host address stays reserved."""
    hosts = network.hosts()
    next(hosts, None)
    for host in hosts:
        yield ipaddress.IPv4Interface(f"{host}/{network.prefixlen}")


def volume_not_found(name: str) -> NotFound:
    return NotFound(f"volume not found: {name}")


def runtime_not_found(name: str) -> NotFound:
    return NotFound(f"runtime not found: {name}")


def network_not_found(name: str) -> NotFound:
    return NotFound(f"network not found: {name}")
