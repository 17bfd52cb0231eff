"""Stores: the storage protocols and the built-in implementations.

``MemoryStore`` and ``SQLiteStore`` (and their async twins) use only the standard library.
The SQLite stores load on first use, so ``import totpcore`` does not load ``sqlite3``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from totpcore.stores.memory import AsyncMemoryStore, MemoryStore
from totpcore.stores.protocol import (
    AsyncStore,
    AsyncUserListing,
    Attempt,
    Limits,
    MarkRequest,
    OneCommitCheck,
    Status,
    Store,
    UserListing,
    UserRecord,
)

if TYPE_CHECKING:
    from totpcore.stores.sqlite import AsyncSQLiteStore, SQLiteStore

__all__ = [
    "AsyncMemoryStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "AsyncUserListing",
    "Attempt",
    "Limits",
    "MarkRequest",
    "MemoryStore",
    "OneCommitCheck",
    "SQLiteStore",
    "Status",
    "Store",
    "UserListing",
    "UserRecord",
]


def __getattr__(name: str) -> Any:
    """Load the SQLite stores on first use."""
    if name in ("SQLiteStore", "AsyncSQLiteStore"):
        from totpcore.stores import sqlite

        return getattr(sqlite, name)
    raise AttributeError(f"module 'totpcore.stores' has no attribute {name!r}")
