"""A resource-limited child process that parses an untrusted workflow document.

Run as ``python -m jobyard.sandbox MAX_BYTES MAX_JOBS`` with the document on stdin; it
limits its own memory and CPU time first and, started as root, becomes ``nobody`` before it
reads a byte of the document; then it writes a pickled ``("ok", WorkflowSpec)`` or
``("invalid", message)`` to stdout. Kept apart from :mod:`jobyard.engine` so that each child
imports only the domain and the config (a fraction of the server's import time).

The parent unpickles with :func:`loads`, which accepts only the workflow domain's classes:
even a child subverted through the YAML parser cannot make the server run anything.
"""

from __future__ import annotations

import io
import os
import pickle
import resource
import sys
from typing import Any

from jobyard.config import parse_duration
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.workflows import WorkflowLimits, parse_workflow

PARSE_MEMORY_BYTES = 1024 * 1024 * 1024  # address space of a parsing child
PARSE_CPU_SECONDS = 60
NOBODY_ID = 65534  # the child's uid and gid when the server runs as root

_ALLOWED = {
    ("jobyard.domain.workflows", "WorkflowSpec"),
    ("jobyard.domain.workflows", "WorkflowJobSpec"),
    ("jobyard.domain.workflows", "Requirement"),
    ("jobyard.domain.jobs", "JobSpec"),
    ("jobyard.domain.jobs", "Resources"),
    ("jobyard.domain.jobs", "ProductRef"),
    ("jobyard.domain.status", "Status"),
}


class _DomainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused: {module}.{name}")
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    """Unpickle a child's answer, refusing every class but the workflow domain's."""
    return _DomainUnpickler(io.BytesIO(data)).load()


def _answer(text: str, limits: WorkflowLimits) -> tuple[str, Any]:
    try:
        return "ok", parse_workflow(text, parse_duration, limits)
    except InvalidArgument as exc:
        return "invalid", str(exc)
    except MemoryError:
        return (
            "invalid",
            f"invalid workflow: parsing it needs more than {PARSE_MEMORY_BYTES >> 20} MB",
        )


def main(argv: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (PARSE_MEMORY_BYTES, PARSE_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (PARSE_CPU_SECONDS, PARSE_CPU_SECONDS + 1))
    if os.geteuid() == 0:  # a parser bug exploited by a document gains nothing
        os.setgroups([])
        os.setgid(NOBODY_ID)
        os.setuid(NOBODY_ID)
    limits = WorkflowLimits(max_bytes=int(argv[0]), max_jobs=int(argv[1]))
    text = sys.stdin.buffer.read(limits.max_bytes + 1).decode("utf-8", errors="replace")
    sys.stdout.buffer.write(pickle.dumps(_answer(text, limits)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
