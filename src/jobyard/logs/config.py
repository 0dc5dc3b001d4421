"""Settings of the output path: size limit, disk reserve, how long a follower may stall."""

from __future__ import annotations

import dataclasses

DEFAULT_MAX_OUTPUT_BYTES = 1 << 30
DEFAULT_FOLLOWER_STALL_TIMEOUT_SECONDS = 30.0
DEFAULT_DISK_RESERVE_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True, slots=True)
class LogConfig:
    # A running job whose output grows past this many bytes is stopped (0 = unlimited).
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    # A follower whose stream accepts nothing for this long is cut off; it may resume from
    # its offset with a new request.
    follower_stall_timeout_seconds: float = DEFAULT_FOLLOWER_STALL_TIMEOUT_SECONDS
    # Space of the data disk kept back for the server's own records, released when job
    # output fills the disk so that the jobs' ends can still be recorded (0 = none).
    disk_reserve_bytes: int = DEFAULT_DISK_RESERVE_BYTES
    # Followers also look at their file this often, inotify or not (0 = inotify only): a
    # job's output written on another node (Slurm) reaches a shared file system that
    # inotify here never hears of.
    poll_seconds: float = 0.0
