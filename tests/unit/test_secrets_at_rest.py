"""Secrets at rest: the server key file, sealing, and erasure when a job ends."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import Job, JobSpec
from jobyard.domain.status import Status
from jobyard.store import MemoryStore, SQLiteStore
from jobyard.store.sealing import SecretBox
from tests.unit.test_store import ID_A, ID_B, make_job, to_running

SECRET = "pa55-word-that-must-never-hit-the-disk"


def on_disk(data_dir: Path) -> bytes:
    """Every byte of every file under ``data_dir`` (database, WAL, shared memory...)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def secret_job(job_id: str = ID_A) -> Job:
    spec = JobSpec(command="env", secret_environment={"TOKEN": SECRET, "EMPTY": ""})
    return dataclasses.replace(make_job(job_id), spec=spec)


def test_the_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    sealed = SecretBox.from_file(path).seal("v", "ctx")
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_bytes()) == 32
    assert SecretBox.from_file(path).open(sealed, "ctx") == "v"


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    SecretBox.from_file(path)
    path.chmod(0o640)
    with pytest.raises(InvalidArgument, match=r"open to others \(mode 0640\): chmod 600 it"):
        SecretBox.from_file(path)


def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(InvalidArgument, match="has 5 bytes, not 32"):
        SecretBox.from_file(path)


def test_a_sealed_value_opens_only_with_its_key_and_context() -> None:
    box = SecretBox.ephemeral()
    sealed = box.seal(SECRET, "job-1/TOKEN")
    assert SECRET not in sealed and box.open(sealed, "job-1/TOKEN") == SECRET
    for other_box, context in ((box, "job-2/TOKEN"), (SecretBox.ephemeral(), "job-1/TOKEN")):
        with pytest.raises(ValueError, match="another key or for another context"):
            other_box.open(sealed, context)


def test_secrets_are_never_written_in_clear_and_erased_at_the_end(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data" / "jobyard.db")
    store.create(secret_job())
    to_running(store, ID_A)
    assert store.get(ID_A).spec.secret_environment == {"TOKEN": SECRET, "EMPTY": ""}
    store.flush()  # the writer thread has committed the job
    assert SECRET.encode() not in on_disk(tmp_path / "data")

    done = store.transition(ID_A, Status.COMPLETED, "completed", exit_code=0)

    assert done.spec.secret_environment == {"TOKEN": "", "EMPTY": ""}  # names kept
    store.flush()
    row = store.connection.execute("SELECT secret_environment FROM jobs").fetchone()[0]
    assert json.loads(row) == {"TOKEN": "", "EMPTY": ""}
    store.close()
    assert SECRET.encode() not in on_disk(tmp_path / "data")


def test_the_memory_store_erases_them_too() -> None:
    store = MemoryStore()
    store.create(secret_job())
    to_running(store, ID_A)
    done = store.transition(ID_A, Status.STOPPED, "stopped")
    assert done.spec.secret_environment == {"TOKEN": "", "EMPTY": ""}


def test_plaintext_an_earlier_version_left_is_sealed_or_erased_on_open(tmp_path: Path) -> None:
    data, box = tmp_path / "data", SecretBox.ephemeral()
    store = SQLiteStore(data / "jobyard.db", box)
    store.create(secret_job(ID_A))
    store.create(secret_job(ID_B))
    to_running(store, ID_B)
    store.transition(ID_B, Status.COMPLETED, "completed", exit_code=0)
    store.close()
    # As a version before 0007 kept them: plaintext in the row (and so in the WAL).
    db = sqlite3.connect(data / "jobyard.db")
    plain = json.dumps({"TOKEN": SECRET})
    db.execute("UPDATE jobs SET secret_environment = ?", (plain,))
    db.commit()
    db.close()
    assert SECRET.encode() in on_disk(data)

    again = SQLiteStore(data / "jobyard.db", box)

    assert again.get(ID_A).spec.secret_environment == {"TOKEN": SECRET}  # queued: still needed
    assert again.get(ID_B).spec.secret_environment == {"TOKEN": ""}  # ended: erased
    again.close()
    assert SECRET.encode() not in on_disk(data)
