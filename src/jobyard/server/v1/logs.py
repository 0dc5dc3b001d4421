"""jobyard.v1 RPCs: logs."""

from __future__ import annotations

from jobyard.engine import JobEngine


class LogRpcs:
    _engine: JobEngine
