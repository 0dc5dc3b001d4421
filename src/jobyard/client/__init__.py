"""The jobyard Python SDK: ``Client`` and the values it returns.

::

    from jobyard.client import Client

    with Client("localhost:50051") as c:
        job = c.submit("python3", ["-c", "print('hi')"], max_memory=256)
        job = c.wait(job.id, timeout=60)
        output = b"".join(c.logs(job.id))
"""

from jobyard.client.client import Client
from jobyard.client.control import JobDetails, JobUsage
from jobyard.client.errors import ConnectionFailed, CredentialsError, error_from_rpc
from jobyard.client.jobs import TERMINAL_STATUSES, Job, JobUpdate, StopResult
from jobyard.client.lifecycle import JobEvent, JobFile, JobPage
from jobyard.client.logs import LogChunk
from jobyard.client.settings import ClientSettings

__all__ = [
    "TERMINAL_STATUSES",
    "Client",
    "ClientSettings",
    "ConnectionFailed",
    "CredentialsError",
    "Job",
    "JobDetails",
    "JobEvent",
    "JobFile",
    "JobPage",
    "JobUpdate",
    "JobUsage",
    "LogChunk",
    "StopResult",
    "error_from_rpc",
]
