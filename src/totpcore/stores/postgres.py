"""PostgresStore and AsyncPostgresStore: the store for several app servers, on PostgreSQL.

Needs the ``postgres`` extra (psycopg 3 and psycopg-pool): ``pip install 'totpcore[postgres]'``.
psycopg is imported when a store is created, never by ``import totpcore``.

**One statement per operation.** Every operation writes with a single SQL statement, and
PostgreSQL runs a single statement atomically: it commits whole or not at all, so nothing is
ever half written. No operation reads in one statement and writes in another, and none opens an
explicit transaction around a read (a refused ``begin_attempt`` reads once more, *after*
deciding, without writing; see below). Each conditional operation is an ``UPDATE ... WHERE
<condition>`` (or ``INSERT ... ON CONFLICT DO NOTHING``) whose condition and new values are
expressions over the row itself, and whose row count tells whether it won. Under PostgreSQL's
default READ COMMITTED isolation an ``UPDATE`` that finds its row changed by a concurrent
transaction waits for it, then evaluates its ``WHERE`` and its ``SET`` again on the newest
version of the row (never on the snapshot it started from); this is what makes N concurrent
operations behave as N sequential ones. For that reason the whole decision lives inside the
``UPDATE``: a decision computed in a separate ``SELECT`` (or in a CTE that reads the table)
would be made on a stale row. Run the store's connections at READ COMMITTED (the default):
under REPEATABLE READ or SERIALIZABLE, concurrent attempts on one user fail with a
serialisation error, which this store raises as :class:`~totpcore.StoreError` (safe, but
legitimate users see errors).

The operations implement the rules of :mod:`totpcore.stores._rules` in SQL:

- ``begin_attempt`` is one ``UPDATE ... RETURNING`` when it writes. It prunes
  ``failure_log`` (``unnest`` / ``array_agg`` of the stamps newer than 24 hours or after
  ``last_success_at``), counts the run and the 24-hour budget, and then either locks
  (``locked_at = now``, refused) or charges (a stamp strictly above ``last_failure_at``,
  nudged by :data:`~totpcore.stores._rules.STAMP_NUDGE`) when the delay of
  :func:`~totpcore.policy.delay_after` has passed. ``RETURNING`` gives the new record and
  whether it was charged (still unlocked) or locked. When the ``UPDATE`` changes nothing (no
  record, another status, already locked, or the delay has not passed) the attempt is refused
  without a write, and a second statement, a ``SELECT``, fetches the record that explains the
  refusal. That second statement exists on this path only: it reads a fresh snapshot, so it
  sees the very row version (a concurrent lock, say) the refusal was decided on, which a
  fallback inside the first statement would not (its snapshot predates the wait). The
  ``SELECT`` decides nothing; a write between the two statements can only make the
  explanation newer.
- ``mark_used``, ``activate``, ``resync`` and ``consume_recovery_hash`` take back the
  attempt's charge with ``array_remove(failure_log, charged_at)``. ``array_remove`` removes
  *every* element equal to the stamp, where the rules remove one; stamps are strictly rising
  within a record, so the log never holds the same stamp twice and the two agree (only a
  record written by hand with duplicate stamps could tell them apart). Likewise
  ``consume_recovery_hash`` removes every copy of the hash, as the rule does.
- ``last_success_at`` moves with ``GREATEST(last_success_at, charged_at)`` (``GREATEST``
  ignores ``NULL``) on fresh successes only: a repeat of the same step takes back only its own
  charge.

A login verification therefore costs two statements when the code is right
(``begin_attempt``, ``mark_used``; a replayed code too) and one when it is wrong; an API-header
repeat costs the same two, and a refused attempt (throttled, locked) two statements that
write nothing.

**Schema.** Two tables in the chosen schema (``public`` by default): ``<table>`` (default
``totpcore_users``), one row per user with a column per :class:`~totpcore.UserRecord` field
(``failure_log`` as ``double precision[]``, ``recovery_hashes`` as ``text[]``, ``user_id``
with the ``"C"`` collation so that listing sorts by code point, like Python's ``sorted``), and
``<table>_meta`` (name, value) for the store-wide settings of ``get_meta``/``set_meta``
(the cipher's key fingerprint, the lockout) and the ``schema_version`` row. On start-up the
store creates or migrates both inside one transaction holding a transaction-level advisory
lock (``pg_advisory_xact_lock``, keyed on the schema and table names), so any number of servers
starting at once create the schema exactly once. A schema newer than this release supports
raises :class:`~totpcore.StoreError` saying to upgrade totpcore. Creating the tables needs the
``CREATE`` privilege once; afterwards the store needs only ``SELECT``, ``INSERT``, ``UPDATE``
and ``DELETE`` on the two tables.

**Errors.** Every psycopg failure (a lost connection, a server that is down or restarting, a
pool timeout, a constraint violation) is raised as :class:`~totpcore.StoreError` naming only
the exception's type. The original exception is deliberately not chained: PostgreSQL's error
details can quote a row, which holds the secret. A failed operation either did not happen or,
when the connection broke after the server committed, happened without its answer; either way
the service refuses the code, which is the safe direction (a used step stays used, a charge
stays charged). After a server restart every idle connection of the pool is dead; the first
operation that fails on one makes the store test the pool's idle connections in the background
(at most once a second), so a restart costs about one failed operation rather than one per
pooled connection.

**Durability and failover.** A statement that returned is committed on the server you are
connected to. With an *asynchronous* standby, a failover can lose the transactions committed
on the old primary in the last moments before it failed: a lost ``mark_used`` makes its code
acceptable once more on the new primary (a replay within the code's window, about a minute),
and lost charges give an attacker back a few guesses. To prevent it, run synchronous
replication: list the standbys in ``synchronous_standby_names`` and keep
``synchronous_commit = on`` (the standby has flushed the commit before it returns) or
``remote_apply`` (the standby has also applied it, so reads there see it); ``remote_write``,
``local`` and ``off`` can all lose acknowledged commits in a failover. Never point the store at
a read-only replica: every verification writes.

**Pools and sizing.** Give the store a :class:`psycopg_pool.ConnectionPool` (or
:class:`psycopg_pool.AsyncConnectionPool` for :class:`AsyncPostgresStore`) that you own, or a
conninfo string, in which case the store creates its own pool (``autocommit`` connections,
which save a ``BEGIN``/``COMMIT`` round trip per operation) and closes it in :meth:`close`. A
pool of your own should be autocommit too for the same reason; the store works either way. A
verification holds a connection for one statement at a time (well under a millisecond on a
local network) and never while a code is computed, so a pool far smaller than the number of
request threads serves them: what bounds throughput is the database server's cores, so keep the
sum of ``max_size`` over every app process near a few times those cores (say 2 to 10 per
process for a handful of processes) and well below the server's ``max_connections``. Many
processes call for PgBouncer in transaction mode (with psycopg older than 3.2 or PgBouncer
older than 1.21, disable prepared statements: ``prepare_threshold=None`` in the pool's
``kwargs``). The pool's ``timeout`` bounds how long an operation waits for a connection; past
it the operation fails with StoreError, never with an acceptance.

**Processes.** A connection must not be used on both sides of ``os.fork()``: create the store
after forking, in each worker process.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

from totpcore._throttle import BUDGET_SECONDS
from totpcore.errors import InvalidParameterError, MissingDependencyError, StoreError
from totpcore.stores._rules import STAMP_NUDGE
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

if TYPE_CHECKING:
    from psycopg import AsyncConnection, Connection
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = ["DEFAULT_TABLE", "SCHEMA_VERSION", "AsyncPostgresStore", "PostgresStore"]

#: The users' table unless another is named; the settings live in ``<table>_meta``.
DEFAULT_TABLE = "totpcore_users"
_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1, in bytes; longer names are truncated
_META_SUFFIX = "_meta"
_VERSION_SETTING = "schema_version"

# Columns are named after the record's fields and kept in the same order, so a row and a
# record convert positionally.
_FIELDS = UserRecord._fields
_STATUSES = {status.value: status for status in Status}
_new_record = UserRecord._make

# Each entry upgrades the schema from the previous version to its own; append, never edit.
# {users} and {meta} are the quoted, schema-qualified table names.
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE {users} (
                user_id text COLLATE "C" PRIMARY KEY,
                status text NOT NULL CHECK (status IN ('setup_pending', 'active')),
                secret bytea NOT NULL,
                generation bigint NOT NULL,
                algorithm text NOT NULL,
                digits integer NOT NULL,
                period integer NOT NULL,
                last_step bigint,
                drift bigint NOT NULL,
                last_failure_at double precision,
                last_success_at double precision,
                locked_at double precision,
                failure_log double precision[] NOT NULL,
                recovery_hashes text[] NOT NULL
            )""",
            """CREATE TABLE {meta} (
                name text PRIMARY KEY,
                value text NOT NULL
            )""",
        ),
    ),
)
#: The schema version this release writes.
SCHEMA_VERSION = _MIGRATIONS[-1][0]

# What begin_attempt decides, as a sub-select over the row being updated (``u``): whether a
# limit is reached (lock), whether the delay has not passed (wait), the pruned log (kept) and
# the new stamp. It is evaluated inside the UPDATE, so a concurrent write makes PostgreSQL
# evaluate it again on the newest row. Mirrors _rules.charge and _rules._tally.
_DECISION = """
    SELECT
        k.kept,
        cardinality(u.failure_log) > 0
            AND (k.run >= %(lockout)s::bigint OR k.recent >= %(lockout)s::bigint) AS lock,
        cardinality(u.failure_log) > 0
            AND u.last_failure_at IS NOT NULL
            AND w.delay > 0
            AND %(now)s::float8 < u.last_failure_at + w.delay AS wait,
        CASE WHEN u.last_failure_at IS NULL OR %(now)s::float8 > u.last_failure_at
            THEN %(now)s::float8
            ELSE u.last_failure_at + %(nudge)s::float8
        END AS stamp
    FROM (
        SELECT
            coalesce(
                array_agg(x.stamp ORDER BY x.n) FILTER (WHERE f.in_run OR f.in_day),
                ARRAY[]::float8[]
            ) AS kept,
            count(*) FILTER (WHERE f.in_run) AS run,
            count(*) FILTER (WHERE f.in_day) AS recent
        FROM unnest(u.failure_log) WITH ORDINALITY AS x(stamp, n)
        CROSS JOIN LATERAL (
            SELECT
                u.last_success_at IS NULL OR x.stamp > u.last_success_at AS in_run,
                x.stamp > %(cutoff)s::float8 AS in_day
        ) AS f
    ) AS k
    CROSS JOIN LATERAL (
        -- delay_after(): nothing within the free failures, then base doubling up to cap
        -- (the exponent capped at 40 as in Python; float8 arithmetic is Python's float).
        SELECT CASE WHEN k.run < %(first_delayed)s::bigint THEN 0::float8
            ELSE LEAST(
                %(base)s::float8
                    * power(2::float8, LEAST(k.run - %(first_delayed)s::bigint, 40)::float8),
                %(cap)s::float8)
        END AS delay
    ) AS w
"""

# Charges or locks, and says which: RETURNING gives the new row and whether it is still
# unlocked (charged) or now locked (refused). No row means refused without a write.
_BEGIN_ATTEMPT = """
    UPDATE {users} AS u
    SET (locked_at, last_failure_at, failure_log) = (
        SELECT
            CASE WHEN d.lock THEN %(now)s::float8 END,
            CASE WHEN d.lock THEN u.last_failure_at ELSE d.stamp END,
            CASE WHEN d.lock THEN d.kept ELSE d.kept || d.stamp END
        FROM ({decision}) AS d
    )
    WHERE u.user_id = %(user_id)s::text
        AND u.status = %(status)s::text
        AND u.locked_at IS NULL
        AND (SELECT d.lock OR NOT d.wait FROM ({decision}) AS d)
    RETURNING {u_columns}, u.locked_at IS NULL AS allowed
"""

_RECORD_VALUES = """
    %(user_id)s::text, %(status)s::text, %(secret)s::bytea, %(generation)s::bigint,
    %(algorithm)s::text, %(digits)s::integer, %(period)s::integer, %(last_step)s::bigint,
    %(drift)s::bigint, %(last_failure_at)s::float8, %(last_success_at)s::float8,
    %(locked_at)s::float8, %(failure_log)s::float8[], %(recovery_hashes)s::text[]
"""

# The replay mark's compare-and-set; a new step also moves last_success_at. A repeat of the
# same step (API-header mode) only takes back its own charge, and only of a step accepted
# here: an imported record's mark, with no fresh success since, allows none.
_MARK_USED = """
    UPDATE {users} SET
        last_step = %(step)s::bigint,
        drift = %(drift)s::bigint,
        last_success_at = CASE WHEN last_step IS NULL OR last_step < %(step)s::bigint
            THEN GREATEST(last_success_at, %(charged_at)s::float8)
            ELSE last_success_at
        END,
        failure_log = array_remove(failure_log, %(charged_at)s::float8)
    WHERE user_id = %(user_id)s::text
        AND generation = %(generation)s::bigint
        AND status = 'active'
        AND (last_step IS NULL
            OR last_step < %(step)s::bigint
            OR (%(allow_equal)s::boolean
                AND last_step = %(step)s::bigint
                AND last_success_at IS NOT NULL))
"""

_ACTIVATE = """
    UPDATE {users} SET
        status = 'active',
        last_step = %(step)s::bigint,
        drift = %(drift)s::bigint,
        last_success_at = GREATEST(last_success_at, %(charged_at)s::float8),
        failure_log = array_remove(failure_log, %(charged_at)s::float8)
    WHERE user_id = %(user_id)s::text
        AND generation = %(generation)s::bigint
        AND status = 'setup_pending'
"""

# Both codes of the pair (steps step-1 and step) must lie above the mark.
_RESYNC = """
    UPDATE {users} SET
        last_step = %(step)s::bigint,
        drift = %(drift)s::bigint,
        last_success_at = GREATEST(last_success_at, %(charged_at)s::float8),
        failure_log = array_remove(failure_log, %(charged_at)s::float8)
    WHERE user_id = %(user_id)s::text
        AND generation = %(generation)s::bigint
        AND status = 'active'
        AND (last_step IS NULL OR last_step < %(step)s::bigint - 1)
"""

_SET_RECOVERY_HASHES = """
    UPDATE {users} SET recovery_hashes = %(hashes)s::text[]
    WHERE user_id = %(user_id)s::text
        AND generation = %(generation)s::bigint
        AND status = 'active'
"""

_CONSUME_RECOVERY_HASH = """
    UPDATE {users} SET
        recovery_hashes = array_remove(recovery_hashes, %(code_hash)s::text),
        last_success_at = GREATEST(last_success_at, %(charged_at)s::float8),
        failure_log = array_remove(failure_log, %(charged_at)s::float8)
    WHERE user_id = %(user_id)s::text
        AND generation = %(generation)s::bigint
        AND status = 'active'
        AND %(code_hash)s::text = ANY (recovery_hashes)
"""

_STATEMENTS: dict[str, str] = {
    "get": "SELECT {columns} FROM {users} WHERE user_id = %(user_id)s::text",
    "user_ids": """
        SELECT user_id FROM {users}
        WHERE %(after)s::text IS NULL OR user_id COLLATE "C" > %(after)s::text COLLATE "C"
        ORDER BY user_id COLLATE "C"
        LIMIT %(limit)s::bigint
    """,
    "insert": """
        INSERT INTO {users} ({columns}) VALUES ({values})
        ON CONFLICT (user_id) DO NOTHING
    """,
    "replace": """
        UPDATE {users} SET ({columns}) = ROW({values})
        WHERE user_id = %(user_id)s::text AND generation = %(expected)s::bigint
    """,
    "delete": "DELETE FROM {users} WHERE user_id = %(user_id)s::text",
    "begin_attempt": _BEGIN_ATTEMPT,
    "mark_used": _MARK_USED,
    "activate": _ACTIVATE,
    "resync": _RESYNC,
    "set_recovery_hashes": _SET_RECOVERY_HASHES,
    "consume_recovery_hash": _CONSUME_RECOVERY_HASH,
    "set_secret": """
        UPDATE {users} SET secret = %(secret)s::bytea
        WHERE user_id = %(user_id)s::text
            AND generation = %(generation)s::bigint
            AND secret = %(expected)s::bytea
    """,
    "unlock": """
        UPDATE {users} SET locked_at = NULL, failure_log = ARRAY[]::float8[]
        WHERE user_id = %(user_id)s::text
    """,
    "get_meta": "SELECT value FROM {meta} WHERE name = %(name)s::text",
    "add_meta": """
        INSERT INTO {meta} (name, value) VALUES (%(name)s::text, %(value)s::text)
        ON CONFLICT (name) DO NOTHING
    """,
    "swap_meta": """
        UPDATE {meta} SET value = %(value)s::text
        WHERE name = %(name)s::text AND value = %(expected)s::text
    """,
    # --- start-up (inside the migration transaction) ---
    "isolation": "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "lock": "SELECT pg_advisory_xact_lock(%(key)s::bigint)",
    "tables": """
        SELECT c.relname FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s::text AND c.relname IN (%(users)s::text, %(meta)s::text)
    """,
    "has_schema": "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace "
    "WHERE nspname = %(schema)s::text)",
    "create_schema": "CREATE SCHEMA IF NOT EXISTS {schema}",
    "version": "SELECT value FROM {meta} WHERE name = %(name)s::text",
    "set_version": """
        INSERT INTO {meta} (name, value) VALUES (%(name)s::text, %(value)s::text)
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
    """,
}

_Rows: TypeAlias = list[tuple[Any, ...]]
_T = TypeVar("_T")
# One step of the start-up: the statement's name (or a migration's SQL) and its parameters;
# the driver sends back the rows it returned.
_Step: TypeAlias = tuple[str, dict[str, Any]]
_Migration: TypeAlias = Generator[_Step, _Rows, None]

_psycopg: ModuleType | None = None


def _load() -> ModuleType:
    """Import psycopg and psycopg_pool on first use, or say what to install."""
    global _psycopg
    if _psycopg is None:
        try:
            import psycopg
            import psycopg.sql
            import psycopg_pool  # noqa: F401 - checked now so the message names both
        except ImportError as error:
            raise MissingDependencyError(
                "the PostgreSQL stores need psycopg 3 and psycopg-pool: "
                "pip install 'totpcore[postgres]'"
            ) from error
        _psycopg = psycopg
    return _psycopg


def _check_name(value: object, what: str, limit: int) -> str:
    """A schema or table name PostgreSQL keeps exactly as given (not truncated)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str")
    if not value or "\x00" in value or len(value.encode("utf-8", "surrogatepass")) > limit:
        raise InvalidParameterError(f"{what} must be 1 to {limit} bytes of UTF-8 without NUL")
    return value


def _lock_key(schema: str, table: str) -> int:
    """The advisory lock key of one table pair: a signed 64-bit hash of its names."""
    digest = hashlib.blake2b(f"totpcore\x00{schema}\x00{table}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _migration(schema: str, table: str) -> _Migration:
    """The start-up, as statements to run in one transaction (the caller drives it).

    Written once for both stores: each sends the statements this yields and sends back the
    rows, the sync one with blocking calls and the async one with awaits.
    """
    meta = table + _META_SUFFIX
    # READ COMMITTED whatever the server's default: each statement after the lock must see
    # what a server that held the lock before us committed.
    yield "isolation", {}
    yield "lock", {"key": _lock_key(schema, table)}
    tables = yield "tables", {"schema": schema, "users": table, "meta": meta}
    found = {row[0] for row in tables}
    if not found:
        if not (yield "has_schema", {"schema": schema})[0][0]:
            # Only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
            # database even when the schema exists.
            yield "create_schema", {}
        version = 0
    elif found == {table, meta}:
        version = _parse_version((yield "version", {"name": _VERSION_SETTING}))
    else:
        raise StoreError(
            f"the schema has a table {sorted(found)[0]!r} but not its totpcore companion: "
            "it belongs to another application, or name another table"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the tables have schema version {version}; this totpcore supports up to "
            f"{SCHEMA_VERSION}; upgrade totpcore"
        )
    for target, statements in _MIGRATIONS:
        if target > version:
            for statement in statements:
                yield statement, {}
            yield "set_version", {"name": _VERSION_SETTING, "value": str(target)}


def _parse_version(rows: _Rows) -> int:
    """The schema version stored in the meta table."""
    text = rows[0][0] if rows else None
    if not isinstance(text, str) or not text.isdigit():
        raise StoreError("the tables carry no totpcore schema version: they are not totpcore's")
    return int(text)


class _Statements:
    """The SQL of one table pair, composed once with its quoted names."""

    def __init__(self, schema: str, table: str, context: Any) -> None:
        sql = _load().sql
        names = {
            "users": sql.Identifier(schema, table),
            "meta": sql.Identifier(schema, table + _META_SUFFIX),
            "schema": sql.Identifier(schema),
            "columns": sql.SQL(", ").join(sql.Identifier(name) for name in _FIELDS),
            "u_columns": sql.SQL(", ").join(sql.Identifier("u", name) for name in _FIELDS),
            "decision": sql.SQL(_DECISION),
            "values": sql.SQL(_RECORD_VALUES),
        }
        self._text: dict[str, str] = {
            name: sql.SQL(template).format(**names).as_string(context)
            for name, template in _STATEMENTS.items()
        }
        self._migrations: dict[str, str] = {
            statement: sql.SQL(statement).format(**names).as_string(context)
            for _, statements in _MIGRATIONS
            for statement in statements
        }

    def __getitem__(self, name: str) -> str:
        """The SQL of a named statement, or of a migration statement given as its template."""
        text = self._text.get(name)
        return self._migrations[name] if text is None else text


def _record_params(record: UserRecord) -> dict[str, Any]:
    """A record as the named parameters of _RECORD_VALUES."""
    if not isinstance(record, UserRecord):
        raise TypeError("record must be a UserRecord")
    values: dict[str, Any] = dict(zip(_FIELDS, record, strict=True))
    values["status"] = record.status.value
    values["secret"] = bytes(record.secret)
    # Lists, not tuples: psycopg adapts a list as an array.
    values["failure_log"] = [float(stamp) for stamp in record.failure_log]
    values["recovery_hashes"] = list(record.recovery_hashes)
    return values


def _record(row: tuple[Any, ...]) -> UserRecord:
    """A row in _FIELDS order (extra columns ignored) as a record."""
    values = list(row[:14])
    values[1] = _STATUSES[values[1]]
    values[12] = tuple(values[12])
    values[13] = tuple(values[13])
    return _new_record(values)


def _charged(row: tuple[Any, ...]) -> Attempt:
    """begin_attempt's answer when its UPDATE wrote: charged, or refused and locked."""
    return Attempt(_record(row), row[14] is True)


def _refused(rows: _Rows) -> Attempt:
    """begin_attempt's answer when its UPDATE wrote nothing: refused, with the record if any."""
    return Attempt(_record(rows[0]) if rows else None, False)


def _attempt_params(user_id: str, status: Status, now: float, limits: Limits) -> dict[str, Any]:
    """begin_attempt's parameters: the clock, the limits and the constants of the rules."""
    return {
        "user_id": user_id,
        "status": status.value,
        "now": float(now),
        "cutoff": float(now) - BUDGET_SECONDS,
        "lockout": limits.lockout,
        # delay_after: with free=0 the first wait still comes after the first failure.
        "first_delayed": limits.free if limits.free > 0 else 1,
        "base": float(limits.base),
        "cap": float(limits.cap),
        "nudge": STAMP_NUDGE,
    }


def _charge_params(
    user_id: str, generation: int, step: int, drift: int, charged_at: float
) -> dict[str, Any]:
    """The parameters shared by mark_used, activate and resync."""
    return {
        "user_id": user_id,
        "generation": generation,
        "step": step,
        "drift": drift,
        "charged_at": float(charged_at),
    }


def _listing_params(after: str | None, limit: int | None) -> dict[str, Any]:
    """user_ids' parameters; a negative limit lists nothing, ``None`` everything."""
    return {"after": after, "limit": None if limit is None else max(limit, 0)}


def _fetch(cursor: Any, sql: str, params: dict[str, Any]) -> _Rows:
    """One statement's rows."""
    rows: _Rows = cursor.execute(sql, params).fetchall()
    return rows


def _rowcount(cursor: Any, sql: str, params: dict[str, Any]) -> int:
    """How many rows one statement changed."""
    count: int = cursor.execute(sql, params).rowcount
    return count


def _charge(cursor: Any, sql: str, params: dict[str, Any], get: str) -> tuple[bool, _Rows]:
    """begin_attempt's statements on one connection.

    ``(True, the UPDATE's row)`` when it wrote, else ``(False, the rows of the SELECT that
    explains the refusal)``.
    """
    rows: _Rows = cursor.execute(sql, params).fetchall()
    if rows:
        return True, rows
    rows = cursor.execute(get, {"user_id": params["user_id"]}).fetchall()
    return False, rows


async def _fetch_async(cursor: Any, sql: str, params: dict[str, Any]) -> _Rows:
    """As :func:`_fetch`, awaited."""
    await cursor.execute(sql, params)
    rows: _Rows = await cursor.fetchall()
    return rows


async def _rowcount_async(cursor: Any, sql: str, params: dict[str, Any]) -> int:
    """As :func:`_rowcount`, awaited."""
    await cursor.execute(sql, params)
    count: int = cursor.rowcount
    return count


async def _charge_async(
    cursor: Any, sql: str, params: dict[str, Any], get: str
) -> tuple[bool, _Rows]:
    """As :func:`_charge`, awaited."""
    await cursor.execute(sql, params)
    rows: _Rows = await cursor.fetchall()
    if rows:
        return True, rows
    await cursor.execute(get, {"user_id": params["user_id"]})
    rows = await cursor.fetchall()
    return False, rows


def _roll_back(connection: Any) -> None:
    """Roll back after a failure, as ``with connection`` does; a broken one is left as is."""
    if not connection.closed:
        with suppress(Exception):
            connection.rollback()


class _Base:
    """What both stores share: names, statements, parameter checks and the error mapping."""

    _statements: _Statements | None = None

    def __init__(self, schema: str, table: str) -> None:
        self._psycopg = _load()
        import psycopg_pool

        # Failures to get a connection, not failures of one: nothing to test in the pool.
        self._pool_errors = (psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed)
        self._next_check = 0.0
        # One cursor per pooled connection, made the first time the store borrows it and
        # reused for every later statement on it. A new cursor per statement (what
        # ``connection.execute`` does) copies the connection's adapters and builds a new
        # transformer, and looks its loaders and dumpers up again: measured, about 20 µs of
        # client CPU more per statement than a reused cursor (50 against 30). Only the
        # holder of the borrowed connection uses its cursor, and it is made with
        # ``connection.cursor()``, so a pool's ``cursor_factory`` still applies. A cursor
        # keeps its last result until its next statement, as a connection keeps its last
        # message in its buffer. Keys hold the connections alive, so the entries of
        # connections the pool has closed are dropped whenever a new one appears (the pool
        # opens one for each it discards).
        self._cursors: dict[Any, Any] = {}
        self._cursors_lock = threading.Lock()
        self._schema = _check_name(schema, "schema", _MAX_IDENTIFIER)
        self._table = _check_name(table, "table", _MAX_IDENTIFIER - len(_META_SUFFIX))

    def __repr__(self) -> str:
        # Never the conninfo: it may hold a password.
        return f"{type(self).__name__}(schema={self._schema!r}, table={self._table!r})"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema of the tables."""
        return self._schema

    @property
    def table(self) -> str:
        """The users' table; the settings are in ``<table>_meta``."""
        return self._table

    @property
    def _sql(self) -> _Statements:
        """The statements, composed at start-up."""
        statements = self._statements
        if statements is None:
            raise StoreError("the store is not open")
        return statements

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Raise psycopg's failures as StoreError naming only the exception type."""
        try:
            yield
        except Exception as error:
            self._failure(error)

    def _failure(self, error: Exception) -> NoReturn:
        """Raise ``error`` as StoreError when it is a failure of the database or of a value.

        ``from None``: PostgreSQL's messages can quote a row, secret included, and a chained
        exception ends up in tracebacks and logs. Any other exception is raised as it is.
        """
        if isinstance(error, self._psycopg.Error):
            if isinstance(error, self._psycopg.OperationalError) and not isinstance(
                error, self._pool_errors
            ):
                self._connection_lost()
            raise StoreError(f"PostgreSQL failed ({type(error).__name__})") from None
        if isinstance(error, UnicodeError | OverflowError):
            raise StoreError(f"a value cannot be stored ({type(error).__name__})") from None
        raise error

    def _new_cursor(self, connection: Any) -> Any:
        """The cursor of a connection the store has not borrowed before (see ``_cursors``)."""
        with self._cursors_lock:
            for known in [known for known in self._cursors if known.closed]:
                del self._cursors[known]
            cursor = self._cursors[connection] = connection.cursor()
        return cursor

    def _connection_lost(self) -> None:
        """A connection failed: have the pool test its idle ones (the stores override this)."""

    def _check_due(self) -> bool:
        """Whether to test the idle connections now: at most once a second.

        A restarted server leaves every idle connection of the pool dead, and each would fail
        one operation; testing them all at the first failure costs one failed operation
        instead of one per connection. The rate limit keeps an outage from starting a test
        per failed operation. (A data race on the time stamp only means one test more.)
        """
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + 1.0
        return True


class PostgresStore(_Base):
    """A :class:`~totpcore.Store` in PostgreSQL, shared by any number of threads and servers.

    Also offers the optional :class:`~totpcore.UserListing`. Usable as a context manager,
    which closes it on exit.

    Args:
        target: A :class:`psycopg_pool.ConnectionPool` (open; yours to close), or a conninfo
            string for a pool the store creates and closes.
        table: The users' table; the settings go in ``<table>_meta``. Created if missing.
        schema: The schema of both tables; created if missing.
        min_size: Connections the store's own pool keeps open (conninfo only).
        max_size: Most connections the store's own pool opens (conninfo only).
        timeout: Seconds an operation waits for one of its own pool's connections before
            failing with StoreError (conninfo only; a pool of yours has its own).

    Raises:
        StoreError: the server cannot be reached, or the tables belong to another application
            or have a schema newer than this release understands.
        MissingDependencyError: psycopg or psycopg-pool is not installed.
        InvalidParameterError: a name or a size is out of range.
        TypeError: ``target`` or an option has the wrong type.
    """

    def __init__(
        self,
        target: ConnectionPool[Any] | str,
        *,
        table: str = DEFAULT_TABLE,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(schema, table)
        import psycopg_pool

        if isinstance(target, psycopg_pool.AsyncConnectionPool):
            raise TypeError("an AsyncConnectionPool needs AsyncPostgresStore")
        if isinstance(target, str):
            _check_sizes(min_size, max_size, timeout)
            self._pool: ConnectionPool[Any] = psycopg_pool.ConnectionPool(
                target,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                kwargs={"autocommit": True},
                name="totpcore",
                open=True,
            )
            self._owned = True
        elif isinstance(target, psycopg_pool.ConnectionPool):
            self._pool = target
            self._owned = False
        else:
            raise TypeError("target must be a psycopg_pool.ConnectionPool or a conninfo string")
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        """Compose the statements and create or migrate the tables, in one transaction."""
        with self._errors(), self._pool.connection() as connection:
            statements = _Statements(self._schema, self._table, connection)
            with connection.transaction():
                _drive(_migration(self._schema, self._table), statements, connection)
        self._statements = statements

    def _connection_lost(self) -> None:
        """Test the pool's idle connections in a background thread, dropping dead ones."""
        if self._check_due():
            threading.Thread(
                target=self._check_idle, name="totpcore-pool-check", daemon=True
            ).start()

    def _check_idle(self) -> None:
        """Test every idle connection; the pool replaces those that fail."""
        # Best effort: the pool may be closed or the server down again; operations report
        # their own failures.
        with suppress(Exception):
            self._pool.check()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The connection pool (the store's own, or the one it was given)."""
        return self._pool

    def close(self) -> None:
        """Close the store's own pool; a pool that was given stays open. Idempotent.

        Later operations on a closed pool raise StoreError.
        """
        if self._owned:
            with self._errors():
                self._pool.close()

    # --- execution -----------------------------------------------------------------------

    def _run(self, work: Callable[..., _T], *arguments: Any) -> _T:
        """``work(cursor, *arguments)`` on a pooled connection's cursor; return its result.

        What ``with pool.connection()`` does, without its two context managers (a few µs a
        statement): a connection that is not autocommit is committed after ``work`` and
        rolled back if it fails; the connection goes back to the pool either way. Failures
        are raised as StoreError (see ``_failure``).
        """
        pool = self._pool
        try:
            connection = pool.getconn()
            try:
                cursor = self._cursors.get(connection)
                if cursor is None:
                    cursor = self._new_cursor(connection)
                result = work(cursor, *arguments)
                if not connection.autocommit:
                    connection.commit()
            except BaseException:
                _roll_back(connection)
                raise
            finally:
                pool.putconn(connection)
        except Exception as error:
            self._failure(error)
        return result

    def _rows(self, name: str, params: dict[str, Any]) -> _Rows:
        """Run one statement on a pooled connection; return its rows."""
        return self._run(_fetch, self._sql[name], params)

    def _count(self, name: str, params: dict[str, Any]) -> int:
        """Run one statement on a pooled connection; return how many rows it changed."""
        return self._run(_rowcount, self._sql[name], params)

    def _won(self, name: str, params: dict[str, Any]) -> bool:
        """Run one conditional write; return whether it changed the row."""
        return self._count(name, params) == 1

    # --- Store protocol ------------------------------------------------------------------

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None`` (one ``SELECT``)."""
        rows = self._rows("get", {"user_id": user_id})
        return _record(rows[0]) if rows else None

    def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Return up to ``limit`` user ids in code-point order, all greater than ``after``."""
        return [row[0] for row in self._rows("user_ids", _listing_params(after, limit))]

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet (``INSERT ... ON CONFLICT DO NOTHING``)."""
        return self._won("insert", _record_params(record))

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's record if its generation is ``generation`` (one ``UPDATE``)."""
        return self._won("replace", {**_record_params(record), "expected": generation})

    def delete(self, user_id: str) -> bool:
        """Remove the user's record (one ``DELETE``)."""
        return self._won("delete", {"user_id": user_id})

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Charge one attempt if the user may make one now (see the module).

        One ``UPDATE`` when it charges or locks; a refusal without a write adds one ``SELECT``
        of the record that explains it, on the same connection.
        """
        params = _attempt_params(user_id, status, now, limits)
        sql = self._sql
        charged, rows = self._run(_charge, sql["begin_attempt"], params, sql["get"])
        return _charged(rows[0]) if charged else _refused(rows)

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
        """Compare-and-set the replay mark (one ``UPDATE``; see :class:`~totpcore.Store`)."""
        params = _charge_params(user_id, generation, step, drift, charged_at)
        params["allow_equal"] = bool(allow_equal)
        return self._won("mark_used", params)

    def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """SETUP_PENDING -> ACTIVE with the confirming step marked used (one ``UPDATE``)."""
        return self._won("activate", _charge_params(user_id, generation, step, drift, charged_at))

    def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """Move the replay mark to ``step`` if the pair lies above it (one ``UPDATE``)."""
        return self._won("resync", _charge_params(user_id, generation, step, drift, charged_at))

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record (one ``UPDATE``)."""
        params = {"user_id": user_id, "generation": generation, "hashes": list(hashes)}
        return self._won("set_recovery_hashes", params)

    def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """Remove ``code_hash`` if present; True only for the one winner (one ``UPDATE``)."""
        params = {
            "user_id": user_id,
            "generation": generation,
            "code_hash": code_hash,
            "charged_at": float(charged_at),
        }
        return self._won("consume_recovery_hash", params)

    def set_secret(self, user_id: str, *, generation: int, expected: bytes, secret: bytes) -> bool:
        """Replace the secret bytes if generation and secret are still as read."""
        params = {
            "user_id": user_id,
            "generation": generation,
            "expected": bytes(expected),
            "secret": bytes(secret),
        }
        return self._won("set_secret", params)

    def unlock(self, user_id: str) -> bool:
        """Empty the failure log and lift the lock; return whether the user exists."""
        return self._won("unlock", {"user_id": user_id})

    def get_meta(self, name: str) -> str | None:
        """Return a store-wide setting, or ``None``."""
        rows = self._rows("get_meta", {"name": name})
        return str(rows[0][0]) if rows else None

    def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """Set a store-wide setting if its current value is ``expected`` (``None``: absent)."""
        if expected is None:
            return self._won("add_meta", {"name": name, "value": value})
        return self._won("swap_meta", {"name": name, "value": value, "expected": expected})


class AsyncPostgresStore(_Base):
    """The asyncio twin of :class:`PostgresStore`, on psycopg's async connections.

    The same single statements, awaited: no operation awaits between a read and a write,
    because none reads and writes in separate statements. Also offers the optional
    :class:`~totpcore.AsyncUserListing`.

    A constructor cannot await, so the pool is opened and the tables created or migrated by
    :meth:`open`, which the first operation calls when the application did not (use
    ``async with AsyncPostgresStore(...) as store`` to open it up front and close it at the
    end). A first operation that fails to open the store raises StoreError, and the next one
    tries again.

    Args:
        target: A :class:`psycopg_pool.AsyncConnectionPool` (open; yours to close), or a
            conninfo string for a pool the store creates, opens and closes.
        table: As for :class:`PostgresStore`.
        schema: As for :class:`PostgresStore`.
        min_size: As for :class:`PostgresStore`.
        max_size: As for :class:`PostgresStore`.
        timeout: As for :class:`PostgresStore`.

    Raises:
        MissingDependencyError: psycopg or psycopg-pool is not installed.
        InvalidParameterError: a name or a size is out of range.
        TypeError: ``target`` or an option has the wrong type.
    """

    def __init__(
        self,
        target: AsyncConnectionPool[Any] | str,
        *,
        table: str = DEFAULT_TABLE,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(schema, table)
        import psycopg_pool

        if isinstance(target, psycopg_pool.ConnectionPool):
            raise TypeError("a ConnectionPool needs PostgresStore; this one takes async pools")
        if isinstance(target, str):
            _check_sizes(min_size, max_size, timeout)
            # Opened by open(), inside the event loop that will use it.
            self._pool: AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
                target,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                kwargs={"autocommit": True},
                name="totpcore",
                open=False,
            )
            self._owned = True
        elif isinstance(target, psycopg_pool.AsyncConnectionPool):
            self._pool = target
            self._owned = False
        else:
            raise TypeError(
                "target must be a psycopg_pool.AsyncConnectionPool or a conninfo string"
            )
        import asyncio  # here, so that the sync store never loads asyncio

        self._opening = asyncio.Lock()
        self._closed = False
        self._checks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Open the store's own pool and create or migrate the tables; idempotent.

        Raises:
            StoreError: the server cannot be reached, the store is closed, or the tables
                belong to another application or have a newer schema.
        """
        async with self._opening:
            if self._statements is not None:
                return
            if self._closed:
                raise StoreError("the store is closed")
            with self._errors():
                if self._owned:
                    await self._pool.open()
                async with self._pool.connection() as connection:
                    statements = _Statements(self._schema, self._table, connection)
                    async with connection.transaction():
                        await _drive_async(
                            _migration(self._schema, self._table), statements, connection
                        )
            self._statements = statements

    async def close(self) -> None:
        """Close the store's own pool; a pool that was given stays open. Idempotent."""
        self._closed = True
        if self._owned:
            with self._errors():
                await self._pool.close()

    def _connection_lost(self) -> None:
        """Test the pool's idle connections in a background task, dropping dead ones."""
        if self._check_due():
            import asyncio

            # Kept referenced until done: the event loop holds only weak references to tasks.
            task = asyncio.get_running_loop().create_task(self._check_idle())
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _check_idle(self) -> None:
        """Test every idle connection; the pool replaces those that fail."""
        with suppress(Exception):  # best effort, as in PostgresStore._check_idle
            await self._pool.check()

    async def __aenter__(self) -> AsyncPostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The connection pool (the store's own, or the one it was given)."""
        return self._pool

    # --- execution -----------------------------------------------------------------------

    async def _run(self, work: Callable[..., Awaitable[_T]], *arguments: Any) -> _T:
        """As :meth:`PostgresStore._run`, awaited; opens the store first if need be."""
        if self._statements is None:
            await self.open()
        pool = self._pool
        try:
            connection = await pool.getconn()
            try:
                cursor = self._cursors.get(connection)
                if cursor is None:
                    cursor = self._new_cursor(connection)
                result = await work(cursor, *arguments)
                if not connection.autocommit:
                    await connection.commit()
            except BaseException:
                if not connection.closed:
                    with suppress(Exception):
                        await connection.rollback()
                raise
            finally:
                await pool.putconn(connection)
        except Exception as error:
            self._failure(error)
        return result

    async def _rows(self, name: str, params: dict[str, Any]) -> _Rows:
        """Run one statement on a pooled connection; return its rows."""
        if self._statements is None:
            await self.open()
        return await self._run(_fetch_async, self._sql[name], params)

    async def _won(self, name: str, params: dict[str, Any]) -> bool:
        """Run one conditional write; return whether it changed the row."""
        if self._statements is None:
            await self.open()
        return await self._run(_rowcount_async, self._sql[name], params) == 1

    # --- AsyncStore protocol -------------------------------------------------------------

    async def get(self, user_id: str) -> UserRecord | None:
        """As :meth:`PostgresStore.get`."""
        rows = await self._rows("get", {"user_id": user_id})
        return _record(rows[0]) if rows else None

    async def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """As :meth:`PostgresStore.user_ids`."""
        return [row[0] for row in await self._rows("user_ids", _listing_params(after, limit))]

    async def insert(self, record: UserRecord) -> bool:
        """As :meth:`PostgresStore.insert`."""
        return await self._won("insert", _record_params(record))

    async def replace(self, record: UserRecord, *, generation: int) -> bool:
        """As :meth:`PostgresStore.replace`."""
        return await self._won("replace", {**_record_params(record), "expected": generation})

    async def delete(self, user_id: str) -> bool:
        """As :meth:`PostgresStore.delete`."""
        return await self._won("delete", {"user_id": user_id})

    async def begin_attempt(
        self, user_id: str, *, status: Status, now: float, limits: Limits
    ) -> Attempt:
        """As :meth:`PostgresStore.begin_attempt`."""
        params = _attempt_params(user_id, status, now, limits)
        if self._statements is None:
            await self.open()
        sql = self._sql
        charged, rows = await self._run(_charge_async, sql["begin_attempt"], params, sql["get"])
        return _charged(rows[0]) if charged else _refused(rows)

    async def mark_used(
        self,
        user_id: str,
        *,
        generation: int,
        step: int,
        drift: int,
        allow_equal: bool,
        charged_at: float,
    ) -> bool:
        """As :meth:`PostgresStore.mark_used`."""
        params = _charge_params(user_id, generation, step, drift, charged_at)
        params["allow_equal"] = bool(allow_equal)
        return await self._won("mark_used", params)

    async def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`PostgresStore.activate`."""
        params = _charge_params(user_id, generation, step, drift, charged_at)
        return await self._won("activate", params)

    async def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`PostgresStore.resync`."""
        params = _charge_params(user_id, generation, step, drift, charged_at)
        return await self._won("resync", params)

    async def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """As :meth:`PostgresStore.set_recovery_hashes`."""
        params = {"user_id": user_id, "generation": generation, "hashes": list(hashes)}
        return await self._won("set_recovery_hashes", params)

    async def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """As :meth:`PostgresStore.consume_recovery_hash`."""
        params = {
            "user_id": user_id,
            "generation": generation,
            "code_hash": code_hash,
            "charged_at": float(charged_at),
        }
        return await self._won("consume_recovery_hash", params)

    async def set_secret(
        self, user_id: str, *, generation: int, expected: bytes, secret: bytes
    ) -> bool:
        """As :meth:`PostgresStore.set_secret`."""
        params = {
            "user_id": user_id,
            "generation": generation,
            "expected": bytes(expected),
            "secret": bytes(secret),
        }
        return await self._won("set_secret", params)

    async def unlock(self, user_id: str) -> bool:
        """As :meth:`PostgresStore.unlock`."""
        return await self._won("unlock", {"user_id": user_id})

    async def get_meta(self, name: str) -> str | None:
        """As :meth:`PostgresStore.get_meta`."""
        rows = await self._rows("get_meta", {"name": name})
        return str(rows[0][0]) if rows else None

    async def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """As :meth:`PostgresStore.set_meta`."""
        if expected is None:
            return await self._won("add_meta", {"name": name, "value": value})
        return await self._won("swap_meta", {"name": name, "value": value, "expected": expected})


def _check_sizes(min_size: int, max_size: int, timeout: float) -> None:
    """The own pool's options."""
    for name, value in (("min_size", min_size), ("max_size", max_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int")
    if not 0 <= min_size <= max_size or max_size < 1:
        raise InvalidParameterError("pool sizes must satisfy 0 <= min_size <= max_size, 1 <= max")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError("timeout must be a number of seconds")
    if not 0 < timeout < 86400:  # also refuses NaN
        raise InvalidParameterError("timeout must be above 0 and below 86400 seconds")


def _drive(migration: _Migration, statements: _Statements, connection: Connection[Any]) -> None:
    """Run the start-up's statements on a blocking connection."""
    try:
        name, params = next(migration)
        while True:
            cursor = connection.execute(statements[name], params)
            rows = cursor.fetchall() if cursor.description is not None else []
            name, params = migration.send(rows)
    except StopIteration:
        return


async def _drive_async(
    migration: _Migration, statements: _Statements, connection: AsyncConnection[Any]
) -> None:
    """Run the start-up's statements on an async connection."""
    try:
        name, params = next(migration)
        while True:
            cursor = await connection.execute(statements[name], params)
            rows = await cursor.fetchall() if cursor.description is not None else []
            name, params = migration.send(rows)
    except StopIteration:
        return
