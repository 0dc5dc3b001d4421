"""Volumes on the host: a sparse ext4 image on a loop device (``filesystem``) or a tmpfs
(``memory``), each of a fixed size, mounted under the data directory::

    DATA/volumes/NAME.img   the filesystem image (sparse: uses only what is written)
    DATA/volumes/NAME/      where the volume is mounted on the host (0777: jobs of different
                            users that name it share it; who may name it is the owner's call)

Jobs that name a volume get ``DATA/volumes/NAME`` bound at ``/volumes/NAME``. A memory
volume's content lives as long as its mount: a server restart remounts it empty.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from pathlib import Path

from jobyard.domain.errors import FailedPrecondition, JobyardError
from jobyard.domain.resources import VOLUME_FILESYSTEM, Volume

log = logging.getLogger("jobyard.volumes")

COMMAND_TIMEOUT_SECONDS = 60.0
VOLUME_MODE = 0o777


class HostVolumes:
    """Creates, mounts and removes volumes' storage; the records are the caller's."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mount_point(self, name: str) -> Path:
        return self.root / name

    def image(self, name: str) -> Path:
        return self.root / f"{name}.img"

    async def create(self, volume: Volume) -> None:
        await asyncio.to_thread(self._create, volume)

    async def remove(self, volume: Volume) -> None:
        await asyncio.to_thread(self._remove, volume)

    def ensure_mounted(self, volume: Volume) -> None:
        """Mount a stored volume again (after a restart or reboot); idempotent."""
        if not os.path.ismount(self.mount_point(volume.name)):
            self._mount(volume)

    def _create(self, volume: Volume) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if volume.type == VOLUME_FILESYSTEM:
                image = self.image(volume.name)
                with open(image, "xb") as f:
                    f.truncate(volume.size_bytes)  # sparse
                _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
            self._mount(volume)
            # mkfs's lost+found would be the one thing in a new volume that jobs cannot remove.
            shutil.rmtree(self.mount_point(volume.name) / "lost+found", ignore_errors=True)
        except BaseException:
            self._remove(volume)
            raise
        log.info("volume created | volume=%s type=%s sizeBytes=%d owner=%s",
                 volume.name, volume.type, volume.size_bytes, volume.owner)  # fmt: skip

    def _mount(self, volume: Volume) -> None:
        target = self.mount_point(volume.name)
        target.mkdir(mode=0o700, exist_ok=True)
        options = "nosuid,nodev"
        if volume.type == VOLUME_FILESYSTEM:
            _run("mount", "-o", f"loop,{options}", str(self.image(volume.name)), str(target))
        else:
            _run("mount", "-t", "tmpfs", "-o", f"size={volume.size_bytes},{options}",
                 f"jobyard-volume-{volume.name}", str(target))  # fmt: skip
        target.chmod(VOLUME_MODE)  # the root of the mounted file system

    def _remove(self, volume: Volume) -> None:
        target = self.mount_point(volume.name)
        if os.path.ismount(target):
            _run("umount", str(target))  # a loop device is detached with its last mount
        if target.exists():
            target.rmdir()
        self.image(volume.name).unlink(missing_ok=True)


def _run(*argv: str) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip() or f"exit status {exc.returncode}"
        if b"busy" in exc.stderr:
            raise FailedPrecondition(f"{argv[0]} failed: {detail}") from exc
        raise JobyardError(f"{argv[0]} failed: {detail}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobyardError(f"{argv[0]} failed: {exc}") from exc
