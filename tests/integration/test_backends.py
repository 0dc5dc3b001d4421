"""Backends through the public API: a job names where it runs, and learns where it ran."""

from __future__ import annotations

import pytest

from jobyard.client import Client
from jobyard.domain.errors import InvalidArgument


def test_a_job_reports_its_backend_apart_from_its_runtime(admin: Client) -> None:
    job = admin.submit("true", backend="local")
    assert (job.backend, job.runtime) == ("local", "")
    done = admin.wait(job.id, timeout=30)
    assert (done.status, done.backend) == ("COMPLETED", "local")
    assert admin.job(job.id).backend == "local"
    assert admin.submit("true").backend == "local"  # the server's default


def test_a_backend_the_server_lacks_is_refused_naming_those_it_has(admin: Client) -> None:
    with pytest.raises(InvalidArgument, match=r"invalid backend 'slurm': this server has local"):
        admin.submit("true", backend="slurm")
    assert admin.jobs() == []
