"""Helpers shared by the test modules, imported as ``from helpers import ...``.

``conftest.py`` holds fixtures only; anything a test module calls directly lives here.

Outside programs (``oathtool``, ``zbarimg``; servers in later suites) are optional on a
developer's machine, where a test that needs a missing one is skipped with the reason. With
``TOTPCORE_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing program is a failure instead, so
CI can never pass by skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import shutil
import struct
import subprocess
import types
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, cast
from unittest import mock

import pytest

from totpcore import (
    TOTP,
    AsyncMemoryStore,
    AsyncPostgresStore,
    AsyncRedisStore,
    AsyncSQLiteStore,
    AsyncStore,
    AsyncTwoFactor,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
    Store,
    TwoFactor,
)
from totpcore.testing import Blocking, FakeClock

__all__ = [
    "SHELLS",
    "STORES",
    "VECTORS",
    "Clock",
    "FakeClock",
    "MakeService",
    "PostgresTables",
    "ServiceFactory",
    "StoreMaker",
    "close_async_store",
    "fresh_redis_store",
    "known_secrets",
    "load_vectors",
    "png_from_matrix",
    "require_program",
    "services_required",
    "wrong_code",
    "zbar_decode",
]

VECTORS = Path(__file__).parent / "vectors"

#: The two service shells every service test runs on.
SHELLS = ("sync", "async")

#: The built-in stores every service test runs on: two local ones, two on real servers
#: (skipped without them, or failed under TOTPCORE_REQUIRE_SERVICES=1).
STORES = ("memory", "sqlite", "redis", "postgres")

#: Most connections an async PostgreSQL twin opens: enough for the threads a test drives
#: through one Blocking view, few enough that opening one stays cheap.
TWIN_POOL_SIZE = 8

#: The old name of :class:`totpcore.testing.FakeClock`, for modules not yet migrated.
Clock = FakeClock


def services_required() -> bool:
    """Return True when missing programs and servers must fail tests instead of skipping them."""
    return os.environ.get("TOTPCORE_REQUIRE_SERVICES", "") not in ("", "0")


def require_program(name: str, package: str | None = None) -> str:
    """Return the path of program ``name``; skip, or fail under TOTPCORE_REQUIRE_SERVICES=1."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {package or name})"
        if services_required():
            pytest.fail(message + "; TOTPCORE_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    return path


def load_vectors(name: str) -> dict[str, Any]:
    """Load one of the RFC vector files kept in tests/vectors."""
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def png_from_matrix(matrix: list[list[bool]], path: Path, scale: int = 4) -> None:
    """Write a black-and-white PNG of a module matrix, written here with zlib alone."""
    height, width = len(matrix) * scale, len(matrix[0]) * scale
    rows = b""
    for row in matrix:
        line = b"\x00" + bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows += line * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def zbar_decode(path: Path) -> str:
    """Decode the QR code in an image with zbarimg (Debian: zbar-tools)."""
    zbarimg = require_program("zbarimg", "zbar-tools")
    result = subprocess.run(
        [zbarimg, "--raw", "--quiet", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"zbarimg could not read {path.name}"
    return result.stdout.rstrip("\n")


# --- codes that are never right by chance --------------------------------------------------
#
# A code chosen blindly ("000000", or the right code plus one) is the code of any given step
# with probability 10**-digits, about one in a million: against a random secret, a test that
# expects it refused fails once in a few hundred thousand runs for every step its window
# reaches. The same holds for a phone's own code meant for one step, which another step of the
# window may share. Tests therefore pick wrong codes that no step near the times they are used
# produces, and pin the secrets where a scenario checks many of the phone's codes.


def wrong_code(phone: TOTP, *times: float, steps: int = 3) -> str:
    """A well-formed code that ``phone`` shows at no step within ``steps`` of any of ``times``.

    Give every time at which the code is sent: it is then refused (INVALID) at each of them
    by any window of up to ``steps`` steps, whatever the secret.
    """
    near = {
        phone.generate(max(at + phone.period * offset, 0.0))
        for at in times
        for offset in range(-steps, steps + 1)
    }
    codes = (f"{n:0{phone.digits}d}" for n in range(10**phone.digits))
    return next(code for code in codes if code not in near)


@contextlib.contextmanager
def known_secrets() -> Iterator[None]:
    """Inside the block, every secret a service makes for a user is a fixed key.

    The n-th new secret of the block is derived from n: distinct keys, the same in every run.
    A scenario that checks many of a phone's codes (replays, drift, old phones after a reset)
    is then the same in every run, instead of failing when a random secret happens to give
    two steps of one window the same code (see :func:`wrong_code`). Only the secrets of new
    enrolments are pinned (``enable``, ``enable_many``, ``reset``); generations, recovery
    codes and ciphertext nonces stay random.
    """
    from totpcore._core import decide

    counter = itertools.count()

    def token_bytes(size: int) -> bytes:
        return hashlib.shake_256(f"totpcore test secret {next(counter)}".encode()).digest(size)

    pinned = types.SimpleNamespace(token_bytes=token_bytes, randbits=secrets.randbits)
    with mock.patch.object(decide, "_secrets", pinned):
        yield


# --- services on both shells ---------------------------------------------------------------


class MakeService(Protocol):
    """The ``make_service`` fixture: ``make(**options)`` is ``TwoFactor(store, **options)``."""

    def __call__(self, **options: Any) -> TwoFactor:
        """Build a service on the test's store, through the test's shell."""
        ...


class StoreMaker(Protocol):
    """The ``new_store`` fixture: ``with new_store() as store:`` gives a new, empty store."""

    def __call__(self) -> contextlib.AbstractContextManager[Store]:
        """A new store of the test's kind, closed or emptied on leaving the block."""
        ...


class ServiceFactory:
    """Builds services on one sync store through one shell, and closes what it opened.

    ``"sync"`` builds ``TwoFactor(store, ...)``. ``"async"`` builds an
    :class:`~totpcore.AsyncTwoFactor` on an async twin of the store (see :meth:`twin`), seen
    through :class:`~totpcore.testing.Blocking` so that the same synchronous test code drives
    it. The async service is typed as a TwoFactor: both shells have the same methods.

    Args:
        store: A :class:`~totpcore.MemoryStore` (or subclass), a
            :class:`~totpcore.SQLiteStore`, a :class:`~totpcore.RedisStore` or a
            :class:`~totpcore.PostgresStore`.
        shell: ``"sync"`` or ``"async"``.
    """

    def __init__(self, store: Store, shell: str) -> None:
        if shell not in SHELLS:
            raise ValueError(f"shell must be one of {SHELLS}, not {shell!r}")
        self.store = store
        self.shell = shell
        self._closers: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"ServiceFactory({self.store!r}, {self.shell!r})"

    def __call__(self, **options: Any) -> TwoFactor:
        """Build a service on the store; ``options`` are TwoFactor's keyword arguments."""
        if self.shell == "sync":
            return TwoFactor(self.store, **options)
        twin = self._new_twin()
        try:
            service = AsyncTwoFactor(twin, **options)
        except BaseException:
            asyncio.run(close_async_store(twin))
            raise
        blocking = Blocking(service)
        self._closers.append(blocking.close)
        # Runs before the loop stops (closers run newest first): a network twin's connections
        # belong to the loop they were opened on.
        self._closers.append(
            lambda: asyncio.run_coroutine_threadsafe(
                close_async_store(twin), blocking.loop
            ).result()
        )
        return cast(TwoFactor, blocking)

    def twin(self) -> AsyncStore:
        """A new async store over the same records, closed with this factory.

        An :class:`~totpcore.AsyncMemoryStore` around the same MemoryStore, or an async store
        of its own on the same SQLite file, Redis key prefix or PostgreSQL tables. The factory
        closes it in an event loop of its own, which suits a twin never used or used through
        :class:`~totpcore.testing.Blocking`; a test that runs it in an ``asyncio.run`` of its
        own must ``await close_async_store(twin)`` before that loop ends (closing twice is
        harmless).
        """
        twin = self._new_twin()
        self._closers.append(lambda: asyncio.run(close_async_store(twin)))
        return twin

    def _new_twin(self) -> AsyncStore:
        """A new async store over the same records as the sync store (not registered)."""
        store = self.store
        if isinstance(store, SQLiteStore):
            return AsyncSQLiteStore(store.path)
        if isinstance(store, MemoryStore):
            return AsyncMemoryStore(store)
        if isinstance(store, RedisStore):
            return AsyncRedisStore(_async_redis_client(store.client), prefix=store.prefix)
        if isinstance(store, PostgresStore):
            conninfo = store.pool.conninfo
            if not isinstance(conninfo, str):
                raise TypeError(
                    "no async twin for a PostgresStore whose pool computes its conninfo"
                )
            return AsyncPostgresStore(
                conninfo,
                table=store.table,
                schema=store.schema,
                max_size=TWIN_POOL_SIZE,
            )
        raise TypeError(f"no async twin for {type(store).__name__}")

    def close(self) -> None:
        """Stop every event loop and close every store this factory opened, newest first."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> ServiceFactory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _async_redis_client(client: Any) -> Any:
    """A ``redis.asyncio.Redis`` client of the server (and database) a sync TCP client uses.

    It connects as the sync client does (address, database, credentials, timeouts), without
    retries, like the test servers' own clients: a dead server fails a call at once.
    """
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    settings = client.connection_pool.connection_kwargs
    wanted = ["host", "port", "db", "username", "password"]
    wanted += ["socket_timeout", "socket_connect_timeout"]
    options = {name: settings[name] for name in wanted if name in settings}
    return redis.asyncio.Redis(retry=Retry(NoBackoff(), 0), **options)


async def close_async_store(store: AsyncStore) -> None:
    """Close an async store built by :class:`ServiceFactory`, with the client it was given.

    Run it on the event loop the store was used on. Closing twice does no harm.
    """
    closing: Awaitable[None] | None = None
    if isinstance(store, AsyncRedisStore):
        await store.aclose()
        closing = store.client.aclose()
    elif isinstance(store, AsyncPostgresStore):
        closing = store.close()
    elif isinstance(store, AsyncSQLiteStore):
        store.close()
    if closing is not None:
        await closing


# --- fresh stores on the session's servers -------------------------------------------------


@contextlib.contextmanager
def fresh_redis_store(client: Any) -> Iterator[RedisStore]:
    """A RedisStore under a key prefix of its own, on a shared client; its keys go afterwards.

    Every test gets a new prefix, so stores on one server never see each other's users,
    listing index or settings, and nothing needs flushing between tests.
    """
    prefix = f"svc:{uuid.uuid4().hex}:"
    try:
        yield RedisStore(client, prefix=prefix)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.unlink(*keys)


class PostgresTables:
    """A schema of PostgreSQL tables made once by the store, put back as new for each test.

    Creating the store's tables for every test costs several catalog writes (and dropping
    them as many again); emptying them costs one short transaction. So the first store
    creates the tables in a schema of their own, a snapshot of every table's rows is taken
    (what a new store holds: its schema version), and :meth:`fresh` deletes every row of
    every table in the schema and puts the snapshot back before handing out a new store. The
    reset looks at the catalogue, not at the store's table names, so it follows whatever
    tables the store makes.

    Args:
        pool: An open, autocommit :class:`psycopg_pool.ConnectionPool`, shared by the stores.
    """

    def __init__(self, pool: Any) -> None:
        from psycopg import sql

        self.pool = pool
        self.schema = f"svc_{uuid.uuid4().hex[:16]}"
        PostgresStore(pool, schema=self.schema)
        self._reset: list[tuple[Any, list[tuple[Any, ...]]]] = []
        with pool.connection() as connection:
            tables = connection.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
                (self.schema,),
            ).fetchall()
            for (table,) in tables:
                name = sql.Identifier(self.schema, table)
                rows = connection.execute(sql.SQL("SELECT * FROM {}").format(name)).fetchall()
                self._reset.append((name, rows))

    def __repr__(self) -> str:
        return f"PostgresTables(schema={self.schema!r})"

    def fresh(self) -> PostgresStore:
        """A new PostgresStore on the schema's tables, emptied back to their first state."""
        import psycopg

        try:
            self._empty()
        except psycopg.OperationalError:
            # The server was restarted (tests/test_postgres.py crashes it on purpose), which
            # left every idle connection of the pool dead: replace them, then empty again.
            self.pool.check()
            self._empty()
        return PostgresStore(self.pool, schema=self.schema)

    def _empty(self) -> None:
        """Delete every row of every table, and put back the rows a new store starts with."""
        from psycopg import sql

        with self.pool.connection() as connection, connection.transaction():
            for name, rows in self._reset:
                connection.execute(sql.SQL("DELETE FROM {}").format(name))
                for row in rows:
                    values = sql.SQL(", ").join(sql.Placeholder() * len(row))
                    insert = sql.SQL("INSERT INTO {} VALUES ({})").format(name, values)
                    connection.execute(insert, row)

    def drop(self) -> None:
        """Drop the schema and every table in it."""
        from psycopg import sql

        with self.pool.connection() as connection:
            statement = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
            connection.execute(statement.format(sql.Identifier(self.schema)))
