"""Every built-in store runs the public StoreContract; SQLite also gets its own checks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from totpcore import (
    AsyncMemoryStore,
    AsyncSQLiteStore,
    InvalidParameterError,
    MemoryStore,
    SQLiteStore,
    Status,
    StoreError,
    UserRecord,
)
from totpcore.stores.sqlite import SCHEMA_VERSION
from totpcore.testing import AsyncStoreContract, StoreContract


class TestMemoryStore(StoreContract):
    """MemoryStore satisfies the contract."""

    @pytest.fixture
    def store(self) -> MemoryStore:
        """A new MemoryStore."""
        return MemoryStore()


class TestSQLiteStore(StoreContract):
    """SQLiteStore satisfies the contract."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        """A SQLiteStore on a new file."""
        store = SQLiteStore(tmp_path / "totp.sqlite3")
        yield store
        store.close()


class TestAsyncMemoryStore(AsyncStoreContract):
    """AsyncMemoryStore satisfies the contract, through the same tests."""

    @pytest.fixture
    def async_store(self) -> AsyncMemoryStore:
        """A new AsyncMemoryStore."""
        return AsyncMemoryStore()


class TestAsyncSQLiteStore(AsyncStoreContract):
    """AsyncSQLiteStore satisfies the contract, through the same tests."""

    @pytest.fixture
    def async_store(self, tmp_path: Path) -> Iterator[AsyncSQLiteStore]:
        """An AsyncSQLiteStore on a new file."""
        store = AsyncSQLiteStore(tmp_path / "totp.sqlite3")
        yield store
        store.close()


def _record(user_id: str = "alice") -> UserRecord:
    return UserRecord(user_id=user_id, status=Status.ACTIVE, secret=b"k" * 20, generation=1)


def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    """Records survive closing and reopening the file."""
    path = tmp_path / "db.sqlite3"
    with SQLiteStore(path) as store:
        store.insert(_record())
    with SQLiteStore(path) as store:
        assert store.get("alice") == _record()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    """The file is in WAL mode and carries the schema version."""
    path = tmp_path / "db.sqlite3"
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    """A database written by a newer release is refused, not misread."""
    path = tmp_path / "db.sqlite3"
    SQLiteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="upgrade totpcore"):
        SQLiteStore(path)


def test_sqlite_refuses_foreign_database(tmp_path: Path) -> None:
    """Another application's database is not silently extended."""
    path = tmp_path / "other.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE invoices (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="another application"):
        SQLiteStore(path)


def test_sqlite_refuses_non_database_file(tmp_path: Path) -> None:
    """A file that is not SQLite gives a StoreError, not sqlite3.DatabaseError."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        SQLiteStore(path)


def test_sqlite_refuses_memory() -> None:
    """':memory:' would give each thread its own empty database."""
    with pytest.raises(InvalidParameterError, match="MemoryStore"):
        SQLiteStore(":memory:")


def test_sqlite_errors_are_store_errors(tmp_path: Path) -> None:
    """Failures inside an operation surface as StoreError with the record unchanged."""
    path = tmp_path / "db.sqlite3"
    store = SQLiteStore(path)
    store.insert(_record())
    with pytest.raises(StoreError):
        store.mark_used(
            "alice", generation=1, step=2**64, drift=0, allow_equal=False, charged_at=1.0
        )
    assert store.get("alice") == _record()
    store.close()


def test_two_stores_on_one_file_share_records(tmp_path: Path) -> None:
    """Two SQLiteStore objects on one file (like two app servers) see each other's writes."""
    path = tmp_path / "db.sqlite3"
    first, second = SQLiteStore(path), SQLiteStore(path)
    first.insert(_record())
    assert second.mark_used(
        "alice", generation=1, step=5, drift=0, allow_equal=False, charged_at=1.0
    )
    assert not first.mark_used(
        "alice", generation=1, step=5, drift=0, allow_equal=False, charged_at=1.0
    )
    first.close()
    second.close()


def test_repr_has_no_secret() -> None:
    """Neither a record's repr nor a store's shows the secret."""
    record = _record()
    assert "kkkk" not in repr(record)
    store = MemoryStore()
    store.insert(record)
    assert "kkkk" not in repr(store)


def test_sqlite_unencodable_text_is_a_store_error(tmp_path: Path) -> None:
    """A user id SQLite cannot encode surfaces as StoreError, not UnicodeEncodeError."""
    with SQLiteStore(tmp_path / "db.sqlite3") as store, pytest.raises(StoreError):
        store.get("\ud800")


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        ("soon", TypeError),
        (True, TypeError),
        (0, InvalidParameterError),
        (float("nan"), InvalidParameterError),
    ],
)
def test_sqlite_timeout_is_checked(tmp_path: Path, timeout: object, error: type[Exception]) -> None:
    """The busy timeout must be a positive number of seconds."""
    with pytest.raises(error):
        SQLiteStore(tmp_path / "db.sqlite3", timeout=timeout)  # type: ignore[arg-type]
