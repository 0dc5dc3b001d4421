"""jobyard.v1 RPCs: jobs."""

from __future__ import annotations

from jobyard.engine import JobEngine


class JobRpcs:
    _engine: JobEngine
