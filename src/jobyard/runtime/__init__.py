"""Runtimes: the port (:mod:`jobyard.runtime.base`) and its adapters."""

from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest, Runtime, Usage

__all__ = ["ExitInfo", "Handle", "LaunchRequest", "Runtime", "Usage"]
