"""Where a job's files live under the server's data directory.

::

    DATA/jobyard.db
    DATA/disk-reserve           space kept back for the server's records (see logs.limits)
    DATA/jobs/<id>/output.log   stdout+stderr, merged, appended by the job's processes
    DATA/jobs/<id>/run/         runtime-private state (exit status written by the supervisor)
    DATA/jobs/<id>/work/        the job's working directory
"""

from __future__ import annotations

import shutil
from pathlib import Path

OUTPUT_FILE = "output.log"


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

    def output(self, job_id: str) -> Path:
        return self.job_dir(job_id) / OUTPUT_FILE

    def state_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "run"

    def workdir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "work"

    def create_job_dir(self, job_id: str) -> None:
        path = self.job_dir(job_id)
        path.mkdir(mode=0o711, exist_ok=True)
        self.output(job_id).touch(mode=0o640, exist_ok=True)

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
