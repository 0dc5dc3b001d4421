"""Where a job's files live under the server's data directory.

::

    DATA/jobyard.db
    DATA/disk-reserve           space kept back for the server's records (see logs.limits)
    DATA/jobs/<id>/output.log   stdout+stderr, merged, appended by the job's processes
                                (of rank 0, for a job with replicas)
    DATA/jobs/<id>/output.rank-<r>.log   the same for rank r > 0
    DATA/jobs/<id>/run/         runtime-private state (exit status written by the supervisor)
    DATA/jobs/<id>/work/        the job's working directory (its /work; for a job with
                                --max-disk an ext4 image, run/work.img, mounted here)
    DATA/workflows/<id>/uploads/  files sent with a workflow, copied into each job that names
                                them when it is created (root's, 0700)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from pathlib import Path

OUTPUT_FILE = "output.log"
RANK_OUTPUT = "output.rank-{rank}.log"


class JobLayout:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.jobs_dir = data_dir / "jobs"

    def prepare(self) -> None:
        # 0711: job users must traverse to their work directory but not list other jobs.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(exist_ok=True)
        self.data_dir.chmod(0o711)
        self.jobs_dir.chmod(0o711)

    @property
    def database(self) -> Path:
        return self.data_dir / "jobyard.db"

    @property
    def reserve(self) -> Path:
        return self.data_dir / "disk-reserve"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def output(self, job_id: str, rank: int = 0) -> Path:
        """Where a job's rank writes its output: rank 0 keeps the job's one file of old,
        so readers that know no ranks read it unchanged."""
        name = OUTPUT_FILE if rank == 0 else RANK_OUTPUT.format(rank=rank)
        return self.job_dir(job_id) / name

    def output_sizes(self, job_id: str) -> list[int]:
        """The size of each rank's output, in rank order; [] when the job has none.

        One ``stat`` per rank and one more (rank files are created together, so the first
        missing one ends the list): cheap enough to poll.
        """
        sizes: list[int] = []
        while True:
            try:
                sizes.append(os.stat(self.output(job_id, len(sizes))).st_size)
            except FileNotFoundError:
                return sizes

    def state_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "run"

    def workdir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "work"

    def workflow_uploads(self, workflow_id: str) -> Path:
        return self.data_dir / "workflows" / workflow_id / "uploads"

    def create_job_dir(self, job_id: str, replicas: int = 1) -> None:
        """The job's directory with an output file per rank: a follower of a job that has
        not started yet waits on its file."""
        path = self.job_dir(job_id)
        path.mkdir(mode=0o711, exist_ok=True)
        for rank in range(replicas):
            self.output(job_id, rank).touch(mode=0o640, exist_ok=True)

    def remove(self, job_id: str) -> None:
        """Everything of the job: a work dir that is a file system of its own (a disk-limited
        job's image) is unmounted first, or rmtree would empty it and leave it mounted."""
        workdir = self.workdir(job_id)
        if os.path.ismount(workdir):
            _detach(workdir)
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)


_MNT_DETACH = 2


def _detach(path: Path) -> None:
    """umount2(path, MNT_DETACH): gone at once, freed when nothing uses it any more."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot unmount {path}: {os.strerror(err)}")
