"""SQLiteStore's failure paths: a held write lock, damaged files and the async twin's shell.

What another program can do to a shared database file: hold the write lock for longer than the
store's timeout, drop one of its tables, write a row the store cannot read back. Each must end
in a StoreError that names SQLite's reason (never a row's values), and must leave the store
usable once the cause is gone.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from totpcore import (
    AsyncSQLiteStore,
    AsyncTwoFactor,
    InvalidParameterError,
    SQLiteStore,
    Status,
    StoreError,
    UserRecord,
)
from totpcore.stores import Limits

NOW = 1_700_000_000.0
OPEN = Limits(free=1_000_000, base=1.0, cap=1.0, lockout=1_000_000)


def record(user_id: str = "alice", **fields: Any) -> UserRecord:
    """An ACTIVE record with generation 7."""
    return UserRecord(user_id, Status.ACTIVE, b"k" * 20, 7)._replace(**fields)


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's connection holding the database's write lock for the block."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield other
        finally:
            other.execute("ROLLBACK")


def test_write_lock_held_past_the_timeout_is_a_store_error(tmp_path: Path) -> None:
    """A writer that cannot get the lock within ``timeout`` fails with StoreError, not sooner.

    Reads still work meanwhile (WAL mode), the failed write changed nothing, and once the
    other program lets go the same write succeeds.
    """
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path, timeout=0.3) as store:
        assert store.insert(record())
        with write_lock(path):
            started = time.monotonic()
            with pytest.raises(StoreError, match="database is locked"):
                store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN)
            waited = time.monotonic() - started
            # Single statements outside a transaction wait the same way.
            with pytest.raises(StoreError, match="locked"):
                store.insert(record("bob"))
            assert store.get("alice") == record()  # readers are never blocked
            assert store.get_meta("anything") is None
        assert 0.25 <= waited < 5.0
        assert store.get("bob") is None
        attempt = store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN)
        assert attempt.allowed
        assert store.insert(record("bob"))


def test_writer_waits_for_a_lock_released_within_the_timeout(tmp_path: Path) -> None:
    """A write blocked by another program's lock succeeds once that lock is released.

    The other program holds the lock until after the write has started and lets go 0.3 s
    later; the write must then complete (not fail) and cannot complete before the release.
    """
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path, timeout=10.0) as store:
        assert store.insert(record())
        locked, calling = threading.Event(), threading.Event()
        released: list[float] = []

        def hold_until_after_the_call() -> None:
            with write_lock(path):
                locked.set()
                calling.wait(10)
                time.sleep(0.3)
                released.append(time.monotonic())  # just before the ROLLBACK lets go

        holder = threading.Thread(target=hold_until_after_the_call)
        holder.start()
        try:
            assert locked.wait(10)
            calling.set()
            assert store.mark_used(
                "alice", generation=7, step=9, drift=0, allow_equal=False, charged_at=NOW
            )
            assert store.set_meta("cipher", "none", expected=None)
            finished = time.monotonic()
        finally:
            holder.join()
        assert released
        assert finished > released[0]  # it waited for the other program's release
        stored = store.get("alice")
        assert stored is not None
        assert stored.last_step == 9
        assert store.get_meta("cipher") == "none"


def test_a_dropped_table_is_a_store_error_naming_sqlites_reason(tmp_path: Path) -> None:
    """Another program dropping the settings table: StoreError with SQLite's reason, no wait."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path, timeout=5.0) as store:
        assert store.set_meta("cipher", "none", expected=None)
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("DROP TABLE totpcore_meta")
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"OperationalError: no such table: totpcore_meta"):
            store.get_meta("cipher")
        with pytest.raises(StoreError, match="no such table"):
            store.set_meta("cipher", "none", expected=None)
        assert time.monotonic() - started < 4.0  # not busy: no retrying until the timeout
        # The users' table is untouched and still works.
        assert store.insert(record())
        assert store.get("alice") == record()


def test_a_malformed_failure_log_is_a_store_error(tmp_path: Path) -> None:
    """A failure_log column another program filled with junk is refused, not half read.

    The message names the column but never its content, and other users stay readable.
    """
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store:
        assert store.insert(record(failure_log=(NOW - 5, NOW - 1)))
        assert store.insert(record("bob"))
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute(
                "UPDATE totpcore_users SET failure_log = '1.5,SENTINEL' WHERE user_id = 'alice'"
            )
        with pytest.raises(StoreError, match="failure_log is malformed") as caught:
            store.get("alice")
        assert "SENTINEL" not in str(caught.value)
        with pytest.raises(StoreError, match="failure_log"):
            store.begin_attempt("alice", status=Status.ACTIVE, now=NOW, limits=OPEN)
        assert store.get("bob") == record("bob")


def test_insert_many_checks_every_record_before_writing_any(tmp_path: Path) -> None:
    """A bad record anywhere in a bulk insert refuses the batch; none of it is written."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store:
        batch = [record("a"), record("b"), record("c", recovery_hashes=("x,y",))]
        with pytest.raises(InvalidParameterError, match="recovery hashes"):
            store.insert_many(batch)
        assert store.user_ids() == []
        assert store.insert_many([record("a"), record("b")]) == [True, True]
        assert store.insert_many([record("b"), record("c")]) == [False, True]
        assert store.user_ids() == ["a", "b", "c"]


def test_operations_after_close_are_store_errors(tmp_path: Path) -> None:
    """After close, reads, writes and transactions all raise StoreError; closing again is fine."""
    store = SQLiteStore(tmp_path / "db.sqlite3")
    store.insert(record())
    store.close()
    store.close()
    for operation in (
        lambda: store.get("alice"),
        lambda: store.insert(record("bob")),
        lambda: store.unlock("alice"),
        lambda: store.set_meta("x", "y", expected=None),
        lambda: store.user_ids(),
    ):
        with pytest.raises(StoreError, match="closed"):
            operation()


def test_async_sqlite_store_as_an_async_context_manager(tmp_path: Path) -> None:
    """AsyncSQLiteStore: repr names the file, ``async with`` closes it, the service runs on it."""
    path = tmp_path / "db.sqlite3"

    async def scenario() -> AsyncSQLiteStore:
        async with AsyncSQLiteStore(path, timeout=5.0, pool_size=2) as store:
            assert repr(store) == f"AsyncSQLiteStore({str(path)!r})"
            assert store.sync.path == str(path)
            service = AsyncTwoFactor(store, issuer="Example")
            assert await service.enable("alice") is Status.SETUP_PENDING
            assert await store.user_ids() == ["alice"]
        return store

    closed = asyncio.run(scenario())

    async def after_close() -> None:
        with pytest.raises(StoreError, match="closed"):
            await closed.get("alice")

    asyncio.run(after_close())
    with SQLiteStore(path) as reopened:
        stored = reopened.get("alice")
        assert stored is not None
        assert stored.status is Status.SETUP_PENDING


def test_async_sqlite_store_checks_its_options(tmp_path: Path) -> None:
    """The async twin refuses what the sync store refuses, and creates no file for it."""
    with pytest.raises(InvalidParameterError, match="synchronous"):
        AsyncSQLiteStore(tmp_path / "db.sqlite3", synchronous="OFF")
    assert not (tmp_path / "db.sqlite3").exists()
    with pytest.raises(InvalidParameterError, match="MemoryStore"):
        AsyncSQLiteStore(":memory:")
