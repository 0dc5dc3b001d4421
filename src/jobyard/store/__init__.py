"""Job persistence: the Store port, the SQLite adapter and an in-memory fake."""

from jobyard.store.base import Store, resolve_id
from jobyard.store.memory import MemoryStore
from jobyard.store.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "resolve_id"]
