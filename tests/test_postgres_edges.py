"""The PostgreSQL stores at their edges: values that cannot be stored, arguments, closed stores.

Against a real server (tests/postgres_server.py). Each refusal is a TypeError for a value of
the wrong kind, or a StoreError that names only an exception type (PostgreSQL's messages can
quote a row), and none of them writes anything.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from postgres_server import PostgresServer, postgres_fixture  # noqa: F401 - registers it
from totpcore import AsyncPostgresStore, PostgresStore, Status, StoreError, UserRecord

pytest.importorskip("psycopg")
pytest.importorskip("psycopg_pool")


def fresh_table() -> str:
    """A table name no other test uses."""
    return f"edge_{uuid.uuid4().hex[:20]}"


def record(user_id: str = "alice", **fields: Any) -> UserRecord:
    """An ACTIVE record with generation 7."""
    return UserRecord(user_id, Status.ACTIVE, b"k" * 20, 7)._replace(**fields)


@pytest.mark.parametrize("option", ["min_size", "max_size"])
def test_pool_sizes_must_be_ints(postgres: PostgresServer, option: str) -> None:
    """A pool size that is not an int is a TypeError naming it, before anything connects."""
    for wrong in (2.0, True, "2"):
        options: dict[str, Any] = {option: wrong}
        with pytest.raises(TypeError, match=f"{option} must be an int"):
            PostgresStore(postgres.conninfo, **options)
        with pytest.raises(TypeError, match=f"{option} must be an int"):
            AsyncPostgresStore(postgres.conninfo, **options)


def test_values_that_cannot_be_stored(postgres: PostgresServer) -> None:
    """Text without UTF-8 and a non-record are refused; nothing reaches the table."""
    with PostgresStore(postgres.conninfo, table=fresh_table(), max_size=2) as store:
        with pytest.raises(StoreError, match=r"a value cannot be stored \(UnicodeEncodeError\)"):
            store.insert(record("bad\udcffid"))
        with pytest.raises(StoreError, match=r"cannot be stored \(UnicodeEncodeError\)"):
            store.get_meta("bad\udcffname")
        with pytest.raises(TypeError, match="UserRecord"):
            store.insert(tuple(record()))  # type: ignore[arg-type]
        with pytest.raises(StoreError, match=r"PostgreSQL failed \(\w+\)") as caught:
            store.insert(record(generation=2**70))
        assert str(2**70) not in str(caught.value)
        assert store.user_ids() == []
        assert store.insert(record())
        assert store.get("alice") == record()


def test_async_store_values_and_closing(postgres: PostgresServer) -> None:
    """The async store refuses the same values, and is refused once closed."""

    async def run() -> None:
        store = AsyncPostgresStore(postgres.conninfo, table=fresh_table(), max_size=2)
        try:
            with pytest.raises(StoreError, match=r"a value cannot be stored"):
                await store.insert(record("bad\udcffid"))
            with pytest.raises(TypeError, match="UserRecord"):
                await store.insert(tuple(record()))  # type: ignore[arg-type]
            assert await store.insert(record())
            assert await store.user_ids() == ["alice"]
        finally:
            await store.close()
        with pytest.raises(StoreError):
            await store.get("alice")

    asyncio.run(run())
