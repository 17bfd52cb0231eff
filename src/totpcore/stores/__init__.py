"""Stores: the storage protocols and the built-in implementations.

``MemoryStore`` and ``SQLiteStore`` (and their async twins) use only the standard library;
``RedisStore`` and ``PostgresStore`` need the ``redis`` and ``postgres`` extras. Every store but
the memory one loads on first use, so ``import totpcore`` loads neither ``sqlite3`` nor a
database client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from totpcore.stores.memory import AsyncMemoryStore, MemoryStore
from totpcore.stores.protocol import (
    AsyncBulkInsert,
    AsyncStore,
    AsyncUserListing,
    Attempt,
    BulkInsert,
    Limits,
    MarkRequest,
    OneCommitCheck,
    Status,
    Store,
    UserListing,
    UserRecord,
)

if TYPE_CHECKING:
    from totpcore.stores.postgres import AsyncPostgresStore, PostgresStore
    from totpcore.stores.redis import AsyncRedisStore, RedisStore
    from totpcore.stores.sqlite import AsyncSQLiteStore, SQLiteStore

__all__ = [
    "AsyncBulkInsert",
    "AsyncMemoryStore",
    "AsyncPostgresStore",
    "AsyncRedisStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "AsyncUserListing",
    "Attempt",
    "BulkInsert",
    "Limits",
    "MarkRequest",
    "MemoryStore",
    "OneCommitCheck",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "Status",
    "Store",
    "UserListing",
    "UserRecord",
]


_LAZY = {
    "SQLiteStore": "totpcore.stores.sqlite",
    "AsyncSQLiteStore": "totpcore.stores.sqlite",
    "RedisStore": "totpcore.stores.redis",
    "AsyncRedisStore": "totpcore.stores.redis",
    "PostgresStore": "totpcore.stores.postgres",
    "AsyncPostgresStore": "totpcore.stores.postgres",
}


def __getattr__(name: str) -> Any:
    """Load the SQLite, Redis and PostgreSQL stores on first use (their clients even later)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'totpcore.stores' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
