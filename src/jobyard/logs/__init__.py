"""Durable job output: file layout and followers reading from byte offsets."""

from jobyard.logs.followers import LogHub
from jobyard.logs.layout import JobLayout

__all__ = ["JobLayout", "LogHub"]
