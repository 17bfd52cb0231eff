"""SQLiteStore: the embedded default, on the standard library's ``sqlite3``.

Safe for several threads and several processes sharing one database file:

- every guarantee of the :class:`~totpcore.Store` protocol is a single ``UPDATE`` whose
  ``WHERE`` clause is the condition, so SQLite's write lock makes it atomic: no read-then-write;
- the database runs in WAL mode (readers never block the writer) with ``synchronous=FULL``, so a
  commit that returned survives a crash or power loss, and a busy timeout so that concurrent
  writers wait for each other instead of failing;
- each thread (and each process after a fork) opens its own connection;
- the schema carries a version (``PRAGMA user_version``) and is migrated forward on open inside
  an immediate transaction, so two processes opening a new file cannot both create it.

Steps are stored as SQLite integers (signed 64-bit), which covers every real clock time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from totpcore.errors import InvalidParameterError, StoreError
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

_TABLE = "totpcore_users"
_COLUMNS = (
    "user_id, status, secret, generation, last_step, drift, failures, "
    "last_failure_at, locked_at, recovery_hashes"
)
# Each entry upgrades the schema from the previous version to its own; append, never edit.
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            f"""CREATE TABLE {_TABLE} (
                user_id TEXT PRIMARY KEY NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('setup_pending', 'active')),
                secret BLOB NOT NULL,
                generation INTEGER NOT NULL,
                last_step INTEGER,
                drift INTEGER NOT NULL DEFAULT 0,
                failures INTEGER NOT NULL DEFAULT 0,
                last_failure_at REAL,
                locked_at REAL,
                recovery_hashes TEXT NOT NULL DEFAULT ''
            )""",
        ),
    ),
)
#: The schema version this release writes.
SCHEMA_VERSION = _MIGRATIONS[-1][0]

_BEGIN_ATTEMPT = f"""
UPDATE {_TABLE} SET
    failures = failures + 1,
    last_failure_at = :now,
    locked_at = CASE WHEN failures + 1 >= :lockout THEN :now ELSE locked_at END
WHERE user_id = :user_id AND status = :status AND failures < :lockout
  AND (last_failure_at IS NULL OR failures < :free
       OR :now >= last_failure_at + MIN(:base * (1 << MIN(failures - :free, 40)), :cap))
RETURNING {_COLUMNS}"""

_MARK_USED = f"""
UPDATE {_TABLE} SET last_step = :step, drift = :drift,
    failures = 0, last_failure_at = NULL, locked_at = NULL
WHERE user_id = :user_id AND generation = :generation AND status = 'active'
  AND (last_step IS NULL OR last_step < :step OR (:allow_equal AND last_step = :step))"""

_ACTIVATE = f"""
UPDATE {_TABLE} SET status = 'active', last_step = :step, drift = :drift,
    failures = 0, last_failure_at = NULL, locked_at = NULL
WHERE user_id = :user_id AND generation = :generation AND status = 'setup_pending'"""

_RESYNC = f"""
UPDATE {_TABLE} SET last_step = :step, drift = :drift,
    failures = 0, last_failure_at = NULL, locked_at = NULL
WHERE user_id = :user_id AND generation = :generation AND status = 'active'
  AND last_step IS :expected"""

# Hashes are kept comma-separated; removing one is a string edit inside one UPDATE, guarded
# by its presence, so two requests with the same code cannot both remove it.
_CONSUME = f"""
UPDATE {_TABLE} SET
    recovery_hashes = TRIM(REPLACE(',' || recovery_hashes || ',', ',' || :code_hash || ',', ','),
                           ','),
    failures = 0, last_failure_at = NULL, locked_at = NULL
WHERE user_id = :user_id AND generation = :generation AND status = 'active'
  AND INSTR(',' || recovery_hashes || ',', ',' || :code_hash || ',') > 0"""


class SQLiteStore:
    """A :class:`~totpcore.Store` in a SQLite database file.

    Args:
        path: The database file; created (with its schema) if missing.
        timeout: Seconds a writer waits for another connection's write lock.

    Raises:
        StoreError: the file cannot be opened, is not a totpcore database, or has a schema newer
            than this release understands.
        InvalidParameterError: ``path`` is ``":memory:"``, which would give every thread its own
            empty database; use :class:`~totpcore.MemoryStore` for that.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self._path = os.fspath(path)
        if self._path == ":memory:" or not self._path:
            raise InvalidParameterError("SQLiteStore needs a file path; use MemoryStore in memory")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise TypeError("timeout must be a number of seconds")
        if not 0 < timeout < 86400:  # also refuses NaN
            raise InvalidParameterError("timeout must be above 0 and below 86400 seconds")
        self._timeout = float(timeout)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        with self._errors():
            self._migrate(self._connection())

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._opened_lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()
        self._local = threading.local()

    # --- Store protocol ------------------------------------------------------------------

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None``."""
        with self._errors():
            row = (
                self._connection()
                .execute(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE user_id = ?", (user_id,))
                .fetchone()
            )
        return None if row is None else _record(row)

    def user_ids(self) -> list[str]:
        """Return the ids of all users with a record, sorted."""
        with self._errors():
            rows = self._connection().execute(f"SELECT user_id FROM {_TABLE} ORDER BY user_id")
            return [row[0] for row in rows]

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet."""
        with self._errors():
            cursor = self._connection().execute(
                f"INSERT OR IGNORE INTO {_TABLE} ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                _row(record),
            )
        return cursor.rowcount == 1

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's record if its generation is ``generation``."""
        values = _row(record)
        with self._errors():
            cursor = self._connection().execute(
                f"UPDATE {_TABLE} SET status = ?, secret = ?, generation = ?, last_step = ?, "
                "drift = ?, failures = ?, last_failure_at = ?, locked_at = ?, recovery_hashes = ? "
                "WHERE user_id = ? AND generation = ?",
                (*values[1:], record.user_id, generation),
            )
        return cursor.rowcount == 1

    def delete(self, user_id: str) -> bool:
        """Remove the user's record."""
        with self._errors():
            cursor = self._connection().execute(
                f"DELETE FROM {_TABLE} WHERE user_id = ?", (user_id,)
            )
        return cursor.rowcount == 1

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Charge one attempt if the user may make one now (one UPDATE ... RETURNING)."""
        parameters = {
            "user_id": user_id,
            "status": status.value,
            "now": now,
            "free": limits.free,
            "base": limits.base,
            "cap": limits.cap,
            "lockout": limits.lockout,
        }
        with self._errors():
            connection = self._connection()
            row = connection.execute(_BEGIN_ATTEMPT, parameters).fetchone()
            if row is not None:
                return Attempt(_record(row), True)
        return Attempt(self.get(user_id), False)

    def mark_used(
        self, user_id: str, *, generation: int, step: int, drift: int, allow_equal: bool
    ) -> bool:
        """Compare-and-set the last used step (one UPDATE)."""
        return self._update(
            _MARK_USED,
            user_id=user_id,
            generation=generation,
            step=step,
            drift=drift,
            allow_equal=allow_equal,
        )

    def activate(self, user_id: str, *, generation: int, step: int, drift: int) -> bool:
        """SETUP_PENDING -> ACTIVE with the confirming step marked used (one UPDATE)."""
        return self._update(
            _ACTIVATE, user_id=user_id, generation=generation, step=step, drift=drift
        )

    def resync(
        self,
        user_id: str,
        *,
        generation: int,
        expected_last_step: int | None,
        step: int,
        drift: int,
    ) -> bool:
        """Move ``last_step`` (even backwards) if it is still what the caller read (one UPDATE)."""
        return self._update(
            _RESYNC,
            user_id=user_id,
            generation=generation,
            expected=expected_last_step,
            step=step,
            drift=drift,
        )

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record (one UPDATE)."""
        if any("," in entry for entry in hashes):
            raise InvalidParameterError("recovery hashes must not contain ','")
        return self._update(
            f"UPDATE {_TABLE} SET recovery_hashes = :hashes "
            "WHERE user_id = :user_id AND generation = :generation AND status = 'active'",
            user_id=user_id,
            generation=generation,
            hashes=",".join(hashes),
        )

    def consume_recovery_hash(self, user_id: str, *, generation: int, code_hash: str) -> bool:
        """Remove one recovery code hash; only one caller can win it (one UPDATE)."""
        if not code_hash or "," in code_hash:
            return False
        return self._update(_CONSUME, user_id=user_id, generation=generation, code_hash=code_hash)

    def unlock(self, user_id: str) -> bool:
        """Clear the failure count and lock (one UPDATE)."""
        return self._update(
            f"UPDATE {_TABLE} SET failures = 0, last_failure_at = NULL, locked_at = NULL "
            "WHERE user_id = :user_id",
            user_id=user_id,
        )

    # --- internals -----------------------------------------------------------------------

    def _update(self, sql: str, **parameters: Any) -> bool:
        """Run one conditional UPDATE; return whether it changed the row."""
        with self._errors():
            return self._connection().execute(sql, parameters).rowcount == 1

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again after a fork)."""
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        if connection is not None and local.pid == os.getpid():
            return connection
        # isolation_level=None: autocommit, so each statement is its own transaction and
        # multi-statement transactions are explicit (BEGIN IMMEDIATE).
        connection = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        local.connection, local.pid = connection, os.getpid()
        with self._opened_lock:
            self._opened.append(connection)
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Bring the schema up to SCHEMA_VERSION inside one immediate transaction."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {version}; this totpcore supports up to "
                    f"{SCHEMA_VERSION}; upgrade totpcore"
                )
            if (
                version == 0
                and connection.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
            ):
                raise StoreError("the file is a SQLite database of another application")
            for target, statements in _MIGRATIONS:
                if target > version:
                    for statement in statements:
                        connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {int(target)}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Raise sqlite3 failures as StoreError, keeping SQLite's first line of explanation."""
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(f"SQLite failed ({type(error).__name__}: {_safe(error)})") from error
        except OverflowError as error:
            raise StoreError("a value does not fit in a SQLite integer") from error
        except UnicodeError as error:
            raise StoreError("a text value is not encodable as UTF-8") from error


def _safe(error: sqlite3.Error) -> str:
    """SQLite's own error text names tables and conditions, never bound values."""
    return str(error).splitlines()[0][:200]


def _row(record: UserRecord) -> tuple[Any, ...]:
    """A record as the column values of one row, in _COLUMNS order."""
    hashes = record.recovery_hashes
    if any("," in entry for entry in hashes):
        raise InvalidParameterError("recovery hashes must not contain ','")
    return (
        record.user_id,
        record.status.value,
        record.secret,
        record.generation,
        record.last_step,
        record.drift,
        record.failures,
        record.last_failure_at,
        record.locked_at,
        ",".join(hashes),
    )


def _record(row: tuple[Any, ...]) -> UserRecord:
    """A row in _COLUMNS order as a record."""
    return UserRecord(
        user_id=row[0],
        status=Status(row[1]),
        secret=bytes(row[2]),
        generation=row[3],
        last_step=row[4],
        drift=row[5],
        failures=row[6],
        last_failure_at=row[7],
        locked_at=row[8],
        recovery_hashes=tuple(row[9].split(",")) if row[9] else (),
    )
