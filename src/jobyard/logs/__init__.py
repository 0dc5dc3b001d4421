"""Durable job output: file layout, followers reading from byte offsets, size limits."""

from jobyard.logs.config import LogConfig
from jobyard.logs.followers import LogHub
from jobyard.logs.layout import JobLayout

__all__ = ["JobLayout", "LogConfig", "LogHub"]
