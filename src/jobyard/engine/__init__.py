"""The engine: admission, launch, exit handling and stop, driven by events."""

from jobyard.engine.jobs import EngineConfig, JobEngine

__all__ = ["EngineConfig", "JobEngine"]
