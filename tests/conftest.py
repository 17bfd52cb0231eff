"""Shared fixtures: each store, each service shell, the test servers, a fixed key.

The servers are one ``redis-server`` (``redis_server``) and one PostgreSQL (``postgres``) for
the whole session, started by the first test that needs them: the service suite's Redis and
PostgreSQL stores and the store-specific modules share them.

Helpers that tests call directly (programs, vectors, PNG and QR tools, the service factory)
live in ``tests/helpers.py`` and are imported from there.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Re-exported for test modules that still import them from here; new code imports helpers.
from helpers import (
    SHELLS,
    STORES,
    Clock,
    MakeService,
    PostgresTables,
    ServiceFactory,
    StoreMaker,
    fresh_redis_store,
    known_secrets,
    load_vectors,
    png_from_matrix,
    require_program,
    services_required,
    zbar_decode,
)

# Registered here, once for the whole session: a module importing them would start its own.
from postgres_server import DATABASE, PostgresServer, postgres_fixture  # noqa: F401 - fixture
from redis_server import RedisServer, redis_server_fixture  # noqa: F401 - fixture
from totpcore import MemoryStore, SQLiteStore, Store

__all__ = [
    "Clock",
    "load_vectors",
    "png_from_matrix",
    "require_program",
    "services_required",
    "zbar_decode",
]

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(scope="session")
def service_redis_client(redis_server: RedisServer) -> Iterator[Any]:
    """One sync client of the session's Redis server, shared by the stores of every test."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def service_postgres(postgres: PostgresServer) -> Iterator[PostgresTables]:
    """The store's tables on the session's PostgreSQL server, emptied for each test.

    One connection pool for the session (a pool per test would pay for its connections every
    time), over the server's Unix socket, which answers sooner than loopback TCP. Sized for
    the threaded tests (16 threads, 40 parallel guesses), which queue for a connection beyond
    it. The async twins open pools of their own, on the same socket.
    """
    import psycopg_pool

    conninfo = f"host={postgres.sockets} port={postgres.port} user=postgres dbname={DATABASE}"
    pool: Any = psycopg_pool.ConnectionPool(
        conninfo, min_size=2, max_size=20, kwargs={"autocommit": True}, open=True
    )
    try:
        tables = PostgresTables(pool)
        yield tables
        tables.drop()
    finally:
        pool.close()


@pytest.fixture(params=STORES)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    """For each built-in store in turn, a maker of new, empty stores of that kind.

    ``with new_store() as store:`` gives a store no other test or call sees, closed (or
    emptied) on leaving. ``redis`` and ``postgres`` run on one server of each kind per
    session: each Redis store under a key prefix of its own, each PostgreSQL store on the
    session's tables emptied first (so one PostgreSQL store at a time). Without the server
    they skip (or fail under TOTPCORE_REQUIRE_SERVICES=1).
    """
    kind: str = request.param
    if kind == "redis":
        client = request.getfixturevalue("service_redis_client")
    elif kind == "postgres":
        tables: PostgresTables = request.getfixturevalue("service_postgres")
    made = itertools.count()

    @contextlib.contextmanager
    def make() -> Iterator[Store]:
        if kind == "memory":
            yield MemoryStore()
        elif kind == "sqlite":
            with SQLiteStore(tmp_path / f"store{next(made) or ''}.sqlite3") as sqlite:
                yield sqlite
        elif kind == "redis":
            with fresh_redis_store(client) as redis:
                yield redis
        else:
            yield tables.fresh()

    return make


@pytest.fixture
def store(new_store: StoreMaker) -> Iterator[Store]:
    """Each built-in store in turn (memory, sqlite, redis, postgres), new and empty."""
    with new_store() as store:
        yield store


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    """Each service shell in turn: ``"sync"`` (TwoFactor) and ``"async"`` (AsyncTwoFactor)."""
    name: str = request.param
    return name


@pytest.fixture
def make_service(store: Store, shell: str) -> Iterator[MakeService]:
    """A factory ``make(**options)`` of services on the test's store, through the test's shell.

    Sync: ``TwoFactor(store, **options)``. Async: an AsyncTwoFactor on an async twin of the
    store, through a Blocking view (typed as TwoFactor). Every event loop and async store it
    opened is closed at teardown.
    """
    with ServiceFactory(store, shell) as factory:
        yield factory


@pytest.fixture(name="known_secrets")
def known_secrets_fixture() -> Iterator[None]:
    """For the whole test, the secrets services make are fixed keys (see helpers.known_secrets).

    For scenarios that check many of a phone's codes, where a random secret would let two
    steps share a code by chance and change a verdict.
    """
    with known_secrets():
        yield


@pytest.fixture(scope="session")
def key() -> bytes:
    """A fixed 160-bit key, as most tests need one and its value does not matter."""
    return bytes(range(1, 21))
