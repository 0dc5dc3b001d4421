"""jobyard.v1 RPCs: control."""

from __future__ import annotations

from jobyard.engine import JobEngine


class ControlRpcs:
    _engine: JobEngine
