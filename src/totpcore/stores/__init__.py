"""Stores: the :class:`Store` protocol and the built-in implementations.

``MemoryStore`` and ``SQLiteStore`` use only the standard library.
"""

from totpcore.stores.memory import MemoryStore
from totpcore.stores.protocol import Attempt, Limits, Status, Store, UserRecord
from totpcore.stores.sqlite import SQLiteStore

__all__ = ["Attempt", "Limits", "MemoryStore", "SQLiteStore", "Status", "Store", "UserRecord"]
