"""The local runtime: jobs in namespaces and cgroups on this host, as an unprivileged user."""

from jobyard.runtime.local.runtime import LocalRuntime, LocalRuntimeConfig

__all__ = ["LocalRuntime", "LocalRuntimeConfig"]
