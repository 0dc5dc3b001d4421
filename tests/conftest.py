"""Shared fixtures: real certificates and the requirement checks for root-only tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def root_problem() -> str | None:
    """Why the real local runtime cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (the local runtime creates cgroups and namespaces)"
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs util-linux {tool}"
    if not (
        Path("/sys/fs/cgroup/cgroup.controllers").exists() or Path("/sys/fs/cgroup/memory").is_dir()
    ):
        return "needs a mounted cgroup hierarchy (v2 with controllers, or v1)"
    return None


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from jobyard.certs import init_certs

    path = tmp_path_factory.mktemp("certs")
    init_certs(path)
    return path
