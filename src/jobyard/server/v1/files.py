"""jobyard.v1 RPCs: files."""

from __future__ import annotations

from jobyard.engine import JobEngine


class FileRpcs:
    _engine: JobEngine
