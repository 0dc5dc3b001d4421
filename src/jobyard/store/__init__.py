"""Persistence: the Store and WorkflowStore ports, SQLite adapters and in-memory fakes."""

from jobyard.store.base import Store, WorkflowStore, resolve_id
from jobyard.store.memory import MemoryStore, MemoryWorkflowStore
from jobyard.store.sqlite import SQLiteStore
from jobyard.store.workflows import SQLiteWorkflowStore

__all__ = [
    "MemoryStore",
    "MemoryWorkflowStore",
    "SQLiteStore",
    "SQLiteWorkflowStore",
    "Store",
    "WorkflowStore",
    "resolve_id",
]
