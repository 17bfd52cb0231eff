"""SQLiteStore: the embedded default, on the standard library's ``sqlite3``.

Safe for several threads and several processes sharing one database file.

**One transaction per operation.** Every conditional operation (``begin_attempt``,
``mark_used``, ``activate``, ``resync``, ``replace``, ``set_recovery_hashes``,
``consume_recovery_hash``, ``set_secret``, ``unlock``, ``set_meta``) is one ``BEGIN IMMEDIATE``
transaction: read the row, apply the operation's rule from :mod:`totpcore.stores._rules` in
Python, write the row back if the rule changed it, commit. ``BEGIN IMMEDIATE`` takes SQLite's
write lock *before* the read, so no other connection, in this process or another, can write
between the read and the write: N concurrent operations behave exactly like N sequential ones,
and each one either commits whole or leaves the row untouched. ``get``, ``user_ids`` and
``get_meta`` are single ``SELECT`` statements; ``insert`` (``INSERT OR IGNORE``) and ``delete``
are single statements, atomic on their own.

**Durability.** The database runs in WAL mode (readers never block the writer) with
``synchronous=FULL``, so a commit that returned survives a crash or power loss.
``synchronous="NORMAL"`` is an opt-in trade: faster commits, but the last transactions before a
power loss (not a process crash) may be rolled back, which can revive a used code or forget a
charged attempt.

**Waiting for the write lock.** Writers wait for one another up to ``timeout`` seconds, but not
with SQLite's busy handler: it sleeps in growing steps (1, 2, 5, 10 ms, ... up to 100 ms), so a
writer that has waited a while sleeps longest and keeps losing the lock to newcomers; with 8
processes saturating one file, one verification in a thousand took over 600 ms and the slowest
about 3 s. The connections run with no busy timeout instead, and the store retries ``BEGIN
IMMEDIATE`` itself after random sleeps: 1 to 10 ms for the first 100 ms of waiting, then 0.2 to
1 ms, so that the writers that waited longest poll most often and are the likeliest to take the
lock next, with every wait still bounded by ``timeout``. (Shorter first sleeps cut the tail
further but hand the lock over more often, which on the reference machine cost up to 45% of the
saturated throughput; see the contention figures in the performance notes.) Single statements
outside a transaction (reads, ``insert``, ``delete``) and ``COMMIT`` are retried the same way
when SQLite reports the database busy.

**Threads.** Connections live in a small pool, not in threads: each operation checks one out
(opening one when none is idle), runs, and checks it back in. At most ``pool_size`` idle
connections are kept; extra ones are closed as they come back, so a program that starts many
short-lived threads holds a bounded number of file descriptors. :meth:`SQLiteStore.close`
closes the pool; a store that is garbage-collected unclosed closes its idle connections too.

**Processes.** A SQLite connection must never be used on both sides of ``os.fork()``. In the
child (``os.register_at_fork``, and a process-id check before every operation as a fallback),
the store forgets the parent's connections without closing them, because closing one runs
SQLite's shutdown (a checkpoint, perhaps removing the ``-wal`` file) with lock state copied from
the parent; they stay referenced for the life of the child so garbage collection cannot close
them either. The child then opens its own. SQLite still keeps some per-process lock bookkeeping
that a child inherits, so creating stores after forking (in each worker) remains the safest
arrangement.

**Files.** A new database file is created with mode 0600 before SQLite opens it; SQLite gives
its ``-wal`` and ``-shm`` files the main file's mode. An existing file's mode is left alone.

**Schema.** The schema carries a version (``PRAGMA user_version``) and is migrated forward on
open inside one immediate transaction, so two processes opening a new file cannot both create
it. Steps are stored as SQLite integers (signed 64-bit), which covers every real clock time.
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from totpcore.errors import InvalidParameterError, StoreError
from totpcore.stores import _rules
from totpcore.stores._adapter import AsyncAdapter
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = ["SCHEMA_VERSION", "AsyncSQLiteStore", "SQLiteStore"]

_T = TypeVar("_T")

_TABLE = "totpcore_users"
_META = "totpcore_meta"
# Columns are named after the record's fields and kept in the same order, so a row and a
# record convert positionally and a new field cannot be forgotten in one of the statements.
_FIELDS = UserRecord._fields
_COLUMNS = ", ".join(_FIELDS)

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
    (
        2,
        (
            # 0.1.0 enrolled every user with SHA1, 6 digits and 30 s unless told otherwise,
            # and did not store the parameters; the defaults describe those rows.
            f"ALTER TABLE {_TABLE} ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'SHA1'",
            f"ALTER TABLE {_TABLE} ADD COLUMN digits INTEGER NOT NULL DEFAULT 6",
            f"ALTER TABLE {_TABLE} ADD COLUMN period INTEGER NOT NULL DEFAULT 30",
            # Comma-separated repr(float) values: exact, and readable in the sqlite3 shell.
            f"ALTER TABLE {_TABLE} ADD COLUMN failure_log TEXT NOT NULL DEFAULT ''",
            f"ALTER TABLE {_TABLE} ADD COLUMN last_success_at REAL",
            # v1 counted consecutive failures; v2 keeps one stamp per charged attempt. A v1 run
            # of N failures becomes N stamps at its last failure, so no run is forgotten
            # (hex(zeroblob(N)) is N "00" pairs, each replaced by one stamp).
            f"UPDATE {_TABLE} SET failure_log = rtrim(replace(hex(zeroblob(failures)), '00', "
            "CAST(last_failure_at AS TEXT) || ','), ',') "
            "WHERE failures > 0 AND last_failure_at IS NOT NULL",
            f"ALTER TABLE {_TABLE} DROP COLUMN failures",
            f"CREATE TABLE {_META} (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",
            # 0.1.0 may have encrypted secrets with older associated data; the service reads
            # this flag to know it must be ready for them. A file without users has none.
            f"INSERT INTO {_META} (name, value) SELECT 'legacy_ciphertexts', 'possible' "
            f"WHERE EXISTS (SELECT 1 FROM {_TABLE})",
        ),
    ),
)
#: The schema version this release writes.
SCHEMA_VERSION = _MIGRATIONS[-1][0]

_SELECT = f"SELECT {_COLUMNS} FROM {_TABLE} WHERE user_id = ?"
_INSERT = f"INSERT OR IGNORE INTO {_TABLE} ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})"
_UPDATE = (
    f"UPDATE {_TABLE} SET {', '.join(f'{name} = ?' for name in _FIELDS[1:])} WHERE user_id = ?"
)

_SYNCHRONOUS = ("FULL", "NORMAL")
# Waiting for the write lock (see the module's notes and _patiently), in seconds: the range
# of the random sleeps, until a writer has waited _AGE, and after.
_FRESH_SLEEP = (0.001, 0.010)
_AGE = 0.100
_AGED_SLEEP = (0.0002, 0.001)


class SQLiteStore:
    """A :class:`~totpcore.Store` in a SQLite database file, shared by threads and processes.

    Usable as a context manager, which closes it on exit.

    Args:
        path: The database file; created (mode 0600, with its schema) if missing.
        timeout: Seconds an operation waits for another connection's write lock (retrying, see
            the module's notes) before it fails with StoreError.
        pool_size: Idle connections kept for reuse; more may be open while operations run
            concurrently, and those are closed when they come back.
        synchronous: ``"FULL"`` (default): a returned commit survives power loss.
            ``"NORMAL"``: faster commits, but the last ones before a power loss may be lost
            (a used code may work again, a charged attempt may be forgotten); opt in knowingly.

    Raises:
        StoreError: the file cannot be created or opened, is not a totpcore database, or has a
            schema newer than this release understands.
        InvalidParameterError: ``path`` is empty or ``":memory:"`` (which would give every
            connection its own empty database; use :class:`~totpcore.MemoryStore` for that),
            or an option is out of range.
        TypeError: an option has the wrong type.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        pool_size: int = 4,
        synchronous: str = "FULL",
    ) -> None:
        self._path = os.fspath(path)
        if self._path == ":memory:" or not self._path:
            raise InvalidParameterError("SQLiteStore needs a file path; use MemoryStore in memory")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool):
            raise TypeError("timeout must be a number of seconds")
        if not 0 < timeout < 86400:  # also refuses NaN
            raise InvalidParameterError("timeout must be above 0 and below 86400 seconds")
        if not isinstance(pool_size, int) or isinstance(pool_size, bool):
            raise TypeError("pool_size must be an int")
        if pool_size < 0:
            raise InvalidParameterError("pool_size must be 0 or more")
        if not isinstance(synchronous, str):
            raise TypeError("synchronous must be a str")
        mode = synchronous.upper()
        if mode not in _SYNCHRONOUS:
            # Checked against a fixed list because it is interpolated into a PRAGMA.
            raise InvalidParameterError("synchronous must be 'FULL' or 'NORMAL'")
        _create_private(self._path)
        self._timeout = float(timeout)
        self._pool = _Pool(functools.partial(_connect, self._path, float(timeout), mode), pool_size)
        # Closes the idle connections if the store is dropped unclosed (Python 3.13 warns
        # about every connection that is garbage-collected open). It holds the pool, never the
        # store, so it does not keep the store alive.
        weakref.finalize(self, self._pool.close)
        try:
            with self._transaction() as connection:
                _migrate(connection)
        except BaseException:
            self._pool.close()
            raise

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
        """Close the pooled connections; later operations raise StoreError. Closing twice is fine.

        A connection still in use by an operation in another thread is closed when that
        operation ends.
        """
        with self._errors():
            self._pool.close()

    # --- Store protocol ------------------------------------------------------------------

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None``."""
        with self._errors(), self._borrowed() as connection:
            return _patiently(lambda: _fetch(connection, user_id), self._timeout)

    def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Return up to ``limit`` user ids sorted, all strictly greater than ``after``."""
        # SQLite's default (BINARY) collation compares UTF-8 bytes, which orders strings by
        # code point exactly like Python's sorted(). LIMIT -1 means no limit.
        with self._errors(), self._borrowed() as connection:
            rows = _patiently(
                lambda: connection.execute(
                    f"SELECT user_id FROM {_TABLE} WHERE :after IS NULL OR user_id > :after "
                    "ORDER BY user_id LIMIT :limit",
                    {"after": after, "limit": -1 if limit is None else max(limit, 0)},
                ).fetchall(),
                self._timeout,
            )
        return [row[0] for row in rows]

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet (one ``INSERT OR IGNORE``)."""
        values = _row(record)
        with self._errors(), self._borrowed() as connection:
            cursor = _patiently(lambda: connection.execute(_INSERT, values), self._timeout)
            return cursor.rowcount == 1

    def insert_many(self, records: Sequence[UserRecord]) -> list[bool]:
        """Insert each record whose user has none yet, all in one transaction (one commit)."""
        rows = [_row(record) for record in records]
        with self._transaction() as connection:
            return [connection.execute(_INSERT, values).rowcount == 1 for values in rows]

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's record if its generation is ``generation``."""
        return self._apply(
            record.user_id,
            lambda row: record if row is not None and row.generation == generation else None,
        )

    def delete(self, user_id: str) -> bool:
        """Remove the user's record (one ``DELETE``)."""
        with self._errors(), self._borrowed() as connection:
            cursor = _patiently(
                lambda: connection.execute(f"DELETE FROM {_TABLE} WHERE user_id = ?", (user_id,)),
                self._timeout,
            )
            return cursor.rowcount == 1

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Charge one attempt if the user may make one now (see :class:`~totpcore.Store`)."""
        return self._modify(
            user_id, lambda row: _rules.charge(row, status=status, now=now, limits=limits)
        )

    def charge_and_mark(
        self,
        user_id: str,
        *,
        status: Status,
        now: float,
        limits: Limits,
        evaluate: Callable[[Attempt], object],
    ) -> tuple[object, bool]:
        """A whole login check in one immediate transaction: one durable commit per login.

        The charge, the service's decision (pure computation, run while the write lock is
        held) and the compare-and-set it asks for are written together, so a login costs one
        fsync instead of two and no crash can separate the charge from its outcome.
        """
        return self._modify(
            user_id,
            lambda row: _rules.charge_and_mark(
                row, status=status, now=now, limits=limits, evaluate=evaluate
            ),
        )

    def mark_used(
        self,
        user_id: str,
        *,
        generation: int,
        step: int,
        drift: int,
        allow_equal: bool,
        charged_at: float,
    ) -> bool:
        """Compare-and-set the replay mark (see :class:`~totpcore.Store`)."""
        return self._apply(
            user_id,
            lambda row: _rules.mark_used(
                row,
                generation=generation,
                step=step,
                drift=drift,
                allow_equal=allow_equal,
                charged_at=charged_at,
            ),
        )

    def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """SETUP_PENDING -> ACTIVE with the confirming step marked used."""
        return self._apply(
            user_id,
            lambda row: _rules.activate(
                row, generation=generation, step=step, drift=drift, charged_at=charged_at
            ),
        )

    def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """Move the replay mark to ``step`` if the pair lies above it."""
        return self._apply(
            user_id,
            lambda row: _rules.resync(
                row, generation=generation, step=step, drift=drift, charged_at=charged_at
            ),
        )

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record."""
        _check_hashes(hashes)  # before the transaction: a bad argument is not a store failure
        return self._apply(
            user_id,
            lambda row: _rules.set_recovery_hashes(row, generation=generation, hashes=hashes),
        )

    def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """Remove one recovery code hash; only one caller can win it."""
        return self._apply(
            user_id,
            lambda row: _rules.consume_recovery_hash(
                row, generation=generation, code_hash=code_hash, charged_at=charged_at
            ),
        )

    def set_secret(self, user_id: str, *, generation: int, expected: bytes, secret: bytes) -> bool:
        """Replace the secret bytes if generation and secret are still as read."""
        return self._apply(
            user_id,
            lambda row: _rules.set_secret(
                row, generation=generation, expected=expected, secret=secret
            ),
        )

    def unlock(self, user_id: str) -> bool:
        """Clear the failures, the failure log and the lock."""
        return self._apply(user_id, _rules.unlock)

    def get_meta(self, name: str) -> str | None:
        """Return a store-wide setting, or ``None``."""
        with self._errors(), self._borrowed() as connection:
            return _patiently(lambda: _meta(connection, name), self._timeout)

    def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """Set a store-wide setting if its current value is ``expected`` (``None``: absent)."""
        with self._transaction() as connection:
            if _meta(connection, name) != expected:
                return False
            connection.execute(
                f"INSERT OR REPLACE INTO {_META} (name, value) VALUES (?, ?)", (name, value)
            )
        return True

    # --- internals -----------------------------------------------------------------------

    def _apply(self, user_id: str, rule: Callable[[UserRecord | None], UserRecord | None]) -> bool:
        """Apply a rule to the user's row in one transaction; return whether it wrote."""

        def written(row: UserRecord | None) -> tuple[UserRecord | None, bool]:
            changed = rule(row)
            return changed, changed is not None

        return self._modify(user_id, written)

    def _modify(
        self, user_id: str, rule: Callable[[UserRecord | None], tuple[UserRecord | None, _T]]
    ) -> _T:
        """Read the row, apply ``rule``, write what it returns, all in one transaction.

        ``rule`` returns the record to write (``None``: leave the row alone) and the
        operation's result.
        """
        with self._transaction() as connection:
            changed, outcome = rule(_fetch(connection, user_id))
            if changed is not None:
                connection.execute(_UPDATE, (*_row(changed)[1:], user_id))
        return outcome

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection inside ``BEGIN IMMEDIATE``, committed if the block returns.

        Waits for the write lock up to the store's timeout, retrying (see the module's notes).
        """
        with self._errors(), self._borrowed() as connection:
            # IMMEDIATE takes the write lock now, before the read, so nobody can write in
            # between; a plain BEGIN would let two transactions read the same row and then
            # have one fail (or, worse, both decide on the same stale value).
            _patiently(lambda: connection.execute("BEGIN IMMEDIATE"), self._timeout)
            try:
                yield connection
                # In WAL mode a commit never waits; in rollback-journal mode (a file system
                # without WAL support) it can, and a busy COMMIT leaves the transaction open,
                # to be retried.
                _patiently(lambda: connection.execute("COMMIT"), self._timeout)
            except BaseException:
                # SQLite may have rolled back already (e.g. after a disk full error); a failed
                # ROLLBACK must not hide the error that caused it. The pool drops a connection
                # that is still inside a transaction.
                if connection.in_transaction:
                    with suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise

    @contextmanager
    def _borrowed(self) -> Iterator[sqlite3.Connection]:
        """A connection checked out of the pool for the duration of the block."""
        connection = self._pool.checkout()
        try:
            yield connection
        finally:
            self._pool.checkin(connection)

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


class _Pool:
    """Idle connections to one database file, owned by the process that opened them.

    Thread-safe. Every connection this process opened and has not closed is in ``_live``
    (idle or checked out), so a fork can hand all of them over to ``_ORPHANED`` at once.
    """

    def __init__(self, opener: Callable[[], sqlite3.Connection], size: int) -> None:
        self._opener = opener
        self._size = size
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._live: set[sqlite3.Connection] = set()
        self._pid = os.getpid()
        self._closed = False
        _POOLS.add(self)

    def checkout(self) -> sqlite3.Connection:
        """An idle connection, or a new one when none is idle."""
        if self._pid != os.getpid():
            # A fork the at-fork hook did not see (one made outside Python's os.fork).
            self.forget_parent()
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._idle:
                return self._idle.pop()
        # Opened outside the lock: opening waits on the disk, and other threads may meanwhile
        # check connections in and out.
        connection = self._opener()
        with self._lock:
            # Read again: another thread may have closed the store while this one opened.
            closed: bool = self._closed
            if not closed:
                self._live.add(connection)
                return connection
        connection.close()
        raise StoreError("the store is closed")

    def checkin(self, connection: sqlite3.Connection) -> None:
        """Return a connection: kept idle if there is room, closed otherwise."""
        with self._lock:
            if connection not in self._live:
                # The parent's connection, checked out before a fork: never ours to keep.
                return
            if not self._closed and not connection.in_transaction and len(self._idle) < self._size:
                self._idle.append(connection)
                return
            self._live.discard(connection)
        connection.close()

    def close(self) -> None:
        """Close the idle connections and refuse new checkouts; idempotent."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live.difference_update(idle)
        failure: sqlite3.Error | None = None
        for connection in idle:
            # Close every one even if one fails, so none is left for the garbage collector.
            try:
                connection.close()
            except sqlite3.Error as error:
                failure = failure or error
        if failure is not None:
            raise failure

    def forget_parent(self) -> None:
        """In a forked child: set the parent's connections aside, unused and unclosed."""
        # Using them would interleave with the parent's use of the same connection; closing
        # them would run SQLite's shutdown (a checkpoint, perhaps removing the -wal file) with
        # lock state copied from the parent. Kept referenced for the life of the process so
        # the garbage collector never closes them either.
        _ORPHANED.extend(self._live)
        self._live = set()
        self._idle = []
        # The parent's lock may have been held by a thread that does not exist in the child.
        self._lock = threading.Lock()
        self._pid = os.getpid()


#: Every pool in this process, for the at-fork hook.
_POOLS: weakref.WeakSet[_Pool] = weakref.WeakSet()
#: Connections inherited through a fork: never used, never closed.
_ORPHANED: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    """Make every pool in the new child process start empty."""
    for pool in list(_POOLS):
        pool.forget_parent()


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 if it does not exist; never touch an existing one.

    SQLite would create it with the umask's mode (typically world-readable), and the file
    holds the secrets (encrypted or not) and the recovery code hashes. SQLite creates the
    ``-wal`` and ``-shm`` files with the main file's mode, so they follow.
    """
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return  # the user's file (or one made by another process): its mode is theirs
    except OSError as error:
        raise StoreError(f"cannot create the database file ({error.strerror})") from error
    os.close(descriptor)


def _connect(path: str, timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open one connection configured for the store."""
    # check_same_thread=False: pooled connections move between threads, one at a time.
    # isolation_level=None: autocommit, so single statements commit on their own and
    # multi-statement transactions are explicit (BEGIN IMMEDIATE), never implicit.
    # The busy timeout applies while the connection is set up; afterwards it is 0 and the
    # store does its own waiting (see _patiently).
    connection = sqlite3.connect(
        path, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        connection.execute("PRAGMA journal_mode = WAL").fetchall()
        connection.execute(f"PRAGMA synchronous = {synchronous}").fetchall()
        connection.execute("PRAGMA busy_timeout = 0").fetchall()
    except BaseException:
        connection.close()
        raise
    return connection


def _patiently(action: Callable[[], _T], timeout: float) -> _T:
    """Run ``action``, retrying while SQLite says the database is busy, for ``timeout`` seconds.

    Returns what ``action`` returns. Sleeps are random (1 to 10 ms, then 0.2 to 1 ms once
    100 ms have passed), so that the writers that waited longest poll most often, unlike
    SQLite's busy handler, whose sleeps grow to 100 ms. ``action`` must change nothing when it
    fails busy (SQLite guarantees it for BEGIN, COMMIT and single statements). After
    ``timeout`` the last busy error is raised.
    """
    try:
        return action()  # the common case: no clock read at all
    except sqlite3.OperationalError as error:
        if not _busy(error):
            raise
    started = time.monotonic()
    deadline = started + timeout
    while True:
        now = time.monotonic()
        low, high = _AGED_SLEEP if now - started >= _AGE else _FRESH_SLEEP
        pause = random.uniform(low, high)  # noqa: S311 - jitter, not a secret
        time.sleep(max(0.0, min(pause, deadline - now)))
        try:
            return action()
        except sqlite3.OperationalError as error:
            if not _busy(error) or time.monotonic() >= deadline:
                raise


def _busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite reported the database busy (any extended code of SQLITE_BUSY)."""
    # getattr: an OperationalError made outside SQLite (a test double) has no code.
    code: int = getattr(error, "sqlite_errorcode", 0)
    return code & 0xFF == sqlite3.SQLITE_BUSY


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring the schema up to SCHEMA_VERSION; runs inside the caller's immediate transaction."""
    version = connection.execute("PRAGMA user_version").fetchall()[0][0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {version}; this totpcore supports up to "
            f"{SCHEMA_VERSION}; upgrade totpcore"
        )
    if version == 0:
        tables = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()[0][0]
        if tables:
            raise StoreError("the file is a SQLite database of another application")
    for target, statements in _MIGRATIONS:
        if target > version:
            for statement in statements:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {int(target)}")


def _fetch(connection: sqlite3.Connection, user_id: str) -> UserRecord | None:
    """The user's row as a record, or ``None``."""
    # fetchall, not fetchone: it runs the statement to completion, so no half-read statement
    # keeps a read snapshot open on a connection that goes back to the pool.
    rows = connection.execute(_SELECT, (user_id,)).fetchall()
    return _record(rows[0]) if rows else None


def _meta(connection: sqlite3.Connection, name: str) -> str | None:
    """A store-wide setting, or ``None``."""
    rows = connection.execute(f"SELECT value FROM {_META} WHERE name = ?", (name,)).fetchall()
    return str(rows[0][0]) if rows else None


def _safe(error: sqlite3.Error) -> str:
    """SQLite's own error text names tables and conditions, never bound values."""
    lines = str(error).splitlines()
    return lines[0][:200] if lines else ""


def _check_hashes(hashes: tuple[str, ...]) -> None:
    """Refuse hashes the comma-separated column could not give back unchanged."""
    if any(not entry or "," in entry for entry in hashes):
        raise InvalidParameterError("recovery hashes must be non-empty and must not contain ','")


def _row(record: UserRecord) -> tuple[Any, ...]:
    """A record as the column values of one row, in _FIELDS order."""
    _check_hashes(record.recovery_hashes)
    return (
        record.user_id,
        record.status.value,
        record.secret,
        record.generation,
        record.algorithm,
        record.digits,
        record.period,
        record.last_step,
        record.drift,
        record.last_failure_at,
        record.last_success_at,
        record.locked_at,
        # repr of a float is the shortest text that parses back to the same float.
        ",".join(repr(float(entry)) for entry in record.failure_log),
        ",".join(record.recovery_hashes),
    )


def _record(row: tuple[Any, ...]) -> UserRecord:
    """A row in _FIELDS order as a record."""
    try:
        failure_log = tuple(float(entry) for entry in row[12].split(",")) if row[12] else ()
    except ValueError as error:
        raise StoreError("a stored failure_log is malformed") from error
    return UserRecord(
        user_id=row[0],
        status=Status(row[1]),
        secret=bytes(row[2]),
        generation=row[3],
        algorithm=row[4],
        digits=row[5],
        period=row[6],
        last_step=row[7],
        drift=row[8],
        last_failure_at=row[9],
        last_success_at=row[10],
        locked_at=row[11],
        failure_log=failure_log,
        recovery_hashes=tuple(row[13].split(",")) if row[13] else (),
    )


class AsyncSQLiteStore(AsyncAdapter):
    """The asyncio twin of :class:`SQLiteStore`: each operation runs in a worker thread.

    The standard library's ``sqlite3`` blocks, and an fsync'd commit takes about a
    millisecond, which the event loop must not wait through. Operations therefore run in the
    default executor (:func:`asyncio.to_thread`), each still one immediate transaction of the
    sync store, so the atomicity and durability are exactly :class:`SQLiteStore`'s. No extra
    dependency is needed; ``aiosqlite`` would add one and run a thread per connection anyway.

    Args:
        path: The database file, as for :class:`SQLiteStore`.
        **options: ``timeout``, ``pool_size`` and ``synchronous``, as for :class:`SQLiteStore`.
            Size the pool near the executor's thread count.
    """

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(SQLiteStore(path, **options))

    def __repr__(self) -> str:
        return f"Async{self._sync!r}"

    async def _call(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        import asyncio

        return await asyncio.to_thread(function, *args, **kwargs)

    def close(self) -> None:
        """Close the underlying store's connections."""
        self._sync.close()

    async def __aenter__(self) -> AsyncSQLiteStore:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()
