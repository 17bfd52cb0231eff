"""The Redis stores at their edges: arguments, foreign data, replicas and script reloads.

Against a real server (tests/redis_server.py). What the contract suites leave out: options of
the wrong type or range, values of the wrong type, keys and index entries another program
wrote, ``wait_replicas`` on the async store (with and without a replica, and after ``SCRIPT
FLUSH``), index repair in both directions, and who closes a client passed in.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from redis_server import (  # noqa: F401 - the fixtures are used by name
    RedisServer,
    redis_cluster_fixture,
    redis_server_fixture,
    running_server,
)
from totpcore import (
    AsyncRedisStore,
    InvalidParameterError,
    RedisStore,
    Status,
    StoreError,
    UserRecord,
)
from totpcore.stores import Limits

NOW = 1_700_000_000.0
LIMITS = Limits(free=5, base=1.0, cap=900.0, lockout=100)
SECRET = b"k" * 20


def record(user_id: str = "alice") -> UserRecord:
    """An ACTIVE record with generation 7."""
    return UserRecord(user_id, Status.ACTIVE, SECRET, 7)


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[Any]:
    """A client of the session's server, flushed before and after the test."""
    redis_client = redis_server.client()
    redis_client.flushdb()
    yield redis_client
    redis_client.flushdb()
    redis_client.close()


def wait_for_link(replica: RedisServer) -> None:
    """Wait until a replica has synchronised with its primary."""
    replica_client = replica.client()
    try:
        deadline = time.monotonic() + 10
        while replica_client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.02)
    finally:
        replica_client.close()


# --- options and arguments ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "expected"),
    [
        ({"wait_replicas": True}, TypeError, "wait_replicas must be an int"),
        ({"wait_replicas": 1.0}, TypeError, "wait_replicas must be an int"),
        ({"wait_timeout": "1"}, TypeError, "wait_timeout must be a number"),
        ({"wait_timeout": True}, TypeError, "wait_timeout must be a number"),
        ({"wait_timeout": 0}, InvalidParameterError, "wait_timeout must be above 0"),
        ({"wait_timeout": 3600}, InvalidParameterError, "wait_timeout must be above 0"),
        ({"wait_timeout": math.nan}, InvalidParameterError, "wait_timeout must be above 0"),
        ({"prefix": b"totpcore:"}, TypeError, "prefix must be a str"),
        ({"prefix": ""}, InvalidParameterError, "prefix must not be empty"),
    ],
)
def test_options_are_checked_by_both_stores(
    client: Any, options: dict[str, Any], error: type[Exception], expected: str
) -> None:
    """Each bad option is refused with its own message, by the sync and the async store."""
    with pytest.raises(error, match=expected):
        RedisStore(client, **options)
    with pytest.raises(error, match=expected):
        AsyncRedisStore(client, **options)


def test_wait_replicas_is_refused_with_a_cluster_client(redis_cluster: RedisServer) -> None:
    """WAIT cannot follow a script across cluster nodes: wait_replicas needs a plain client."""
    cluster = redis_cluster.cluster_client()
    try:
        with pytest.raises(InvalidParameterError, match="cluster client"):
            RedisStore(cluster, wait_replicas=1)
        assert RedisStore(cluster, prefix="edges:").prefix == "edges:"
    finally:
        cluster.close()


def test_values_of_the_wrong_type_are_type_errors_before_any_write(client: Any) -> None:
    """A str of hashes, a plain tuple as a record, bytes as a user id: TypeError, no key made."""
    store = RedisStore(client, prefix="edges:")
    with pytest.raises(TypeError, match="not a str"):
        store.set_recovery_hashes("alice", generation=7, hashes="a$1,b$2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="UserRecord"):
        store.insert(tuple(record()))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a str"):
        store.get(b"alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a str"):
        store.user_ids(after=b"a")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="finite"):
        store.begin_attempt("alice", status=Status.ACTIVE, now=math.inf, limits=LIMITS)
    assert client.keys("edges:*") == []


def test_setting_names_without_utf8_are_store_errors(client: Any) -> None:
    """A setting name with no UTF-8 form is StoreError, as it is on SQLite, in both stores."""
    store = RedisStore(client, prefix="edges:")
    with pytest.raises(StoreError, match="UTF-8"):
        store.get_meta("bad\udcffname")

    async def run() -> None:
        async_store = AsyncRedisStore(client_for(store), prefix="edges:")
        try:
            with pytest.raises(StoreError, match="UTF-8"):
                await async_store.get_meta("bad\udcffname")
        finally:
            await async_store.client.aclose()

    asyncio.run(run())


def client_for(store: RedisStore) -> Any:
    """An asyncio client of the same server as ``store``'s sync client."""
    import redis.asyncio

    options = store.client.connection_pool.connection_kwargs
    return redis.asyncio.Redis(host=options["host"], port=options["port"])


# --- data another program wrote -------------------------------------------------------------


def test_a_listing_entry_that_is_not_utf8_is_a_store_error(client: Any) -> None:
    """An index entry that cannot be a user id fails the listing, in both stores."""
    store = RedisStore(client, prefix="edges:")
    assert store.insert(record())
    client.zadd("edges:users", {b"\xff\xfe": 0})
    with pytest.raises(StoreError, match="not a user id"):
        store.user_ids()

    async def run() -> None:
        async_store = AsyncRedisStore(client_for(store), prefix="edges:")
        try:
            with pytest.raises(StoreError, match="not a user id"):
                await async_store.user_ids()
            assert await async_store.user_ids(limit=0) == []  # nothing asked, nothing read
        finally:
            await async_store.client.aclose()

    asyncio.run(run())


def test_a_setting_that_is_not_utf8_is_a_store_error(client: Any) -> None:
    """A setting value another program wrote as raw bytes is refused, not half decoded."""
    store = RedisStore(client, prefix="edges:")
    assert store.set_meta("cipher", "none", expected=None)
    client.hset("edges:meta", "cipher", b"\xff")
    with pytest.raises(StoreError, match="setting is malformed"):
        store.get_meta("cipher")


def test_rebuild_index_both_ways_and_stray_keys(client: Any) -> None:
    """rebuild_index adds missing users, drops ids without a record, and ignores stray hashes.

    A hash under the user pattern without a ``user_id`` field is not a user: it is neither
    listed nor counted.
    """
    store = RedisStore(client, prefix="edges:")
    for name in ("bob", "alice"):
        assert store.insert(record(name))
    client.hset("edges:{user:zz}", "note", "not a user")  # stray key of another program
    assert store.rebuild_index() == 2  # nothing to repair
    assert store.user_ids() == ["alice", "bob"]
    client.zadd("edges:users", {b"ghost": 0})  # listed, no record
    client.zrem("edges:users", b"bob")  # stored, not listed
    assert store.rebuild_index() == 2
    assert store.user_ids() == ["alice", "bob"]

    async def run() -> None:
        async_store = AsyncRedisStore(client_for(store), prefix="edges:")
        try:
            await async_store.client.zadd("edges:users", {b"phantom": 0})
            assert await async_store.rebuild_index() == 2
            assert await async_store.user_ids() == ["alice", "bob"]
            assert await async_store.rebuild_index() == 2  # already right: nothing changes
        finally:
            await async_store.client.aclose()

    asyncio.run(run())
    assert client.exists("edges:{user:zz}")  # the stray key is left alone


# --- clients the caller owns ----------------------------------------------------------------


def test_closing_a_store_leaves_a_client_passed_in_open(client: Any) -> None:
    """close() and the context managers close only clients the store made itself."""
    with RedisStore(client, prefix="edges:") as store:
        assert store.insert(record())
    assert client.ping()  # still the caller's, still open

    async def run() -> None:
        async_client = client_for(RedisStore(client))
        try:
            async with AsyncRedisStore(async_client, prefix="edges:") as async_store:
                assert await async_store.get("alice") == record()
            assert await async_client.ping()
        finally:
            await async_client.aclose()

    asyncio.run(run())


# --- the async store and replicas -----------------------------------------------------------


def test_async_wait_replicas_with_a_replica_and_after_script_flush(
    redis_server: RedisServer, client: Any
) -> None:
    """AsyncRedisStore(wait_replicas=1): writes return once the replica has them.

    After ``SCRIPT FLUSH`` the pipelined EVALSHA is answered NOSCRIPT and the store sends the
    script itself, still with its WAIT; without the replica, a write is a StoreError naming
    the replicas, and a refused operation (which wrote nothing) still answers.
    """
    with running_server(replica_of=redis_server.port) as replica:
        wait_for_link(replica)
        replica_client = replica.client()

        async def with_replica() -> None:
            async_client = redis_server.async_client()
            store = AsyncRedisStore(
                async_client, prefix="edges:", wait_replicas=1, wait_timeout=2.0
            )
            try:
                assert await store.insert(record())
                attempt = await store.begin_attempt(
                    "alice", status=Status.ACTIVE, now=NOW, limits=LIMITS
                )
                assert attempt.allowed
                await async_client.script_flush()
                assert await store.mark_used(
                    "alice", generation=7, step=5, drift=0, allow_equal=False, charged_at=NOW
                )
                # A script error (another program's string where a user hash belongs) is a
                # StoreError naming the operation, not the server's reply.
                await async_client.set(store.user_key("mallory"), "not a hash")
                with pytest.raises(StoreError, match=r"during begin_attempt \(ResponseError\)"):
                    await store.begin_attempt(
                        "mallory", status=Status.ACTIVE, now=NOW, limits=LIMITS
                    )
            finally:
                await async_client.aclose()

        asyncio.run(with_replica())
        assert replica_client.hget("edges:{user:616c696365}", "last_step") == b"5"
        replica_client.close()
        replica.kill()

        async def without_replica() -> None:
            async_client = redis_server.async_client()
            hasty = AsyncRedisStore(
                async_client, prefix="edges:", wait_replicas=1, wait_timeout=0.1
            )
            try:
                with pytest.raises(StoreError, match="reached 0 of 1 replicas"):
                    await hasty.mark_used(
                        "alice", generation=7, step=6, drift=0, allow_equal=False, charged_at=NOW
                    )
                assert not await hasty.mark_used(
                    "alice", generation=8, step=7, drift=0, allow_equal=False, charged_at=NOW
                )
            finally:
                await async_client.aclose()

        asyncio.run(without_replica())
    # The unconfirmed write stayed on the primary: the code was refused, never accepted twice.
    stored = RedisStore(client, prefix="edges:").get("alice")
    assert stored is not None
    assert stored.last_step == 6


def test_sync_wait_replicas_reloads_flushed_scripts(redis_server: RedisServer, client: Any) -> None:
    """RedisStore(wait_replicas=1) after ``SCRIPT FLUSH``: the script is resent with its WAIT."""
    with running_server(replica_of=redis_server.port) as replica:
        wait_for_link(replica)
        store = RedisStore(client, prefix="edges:", wait_replicas=1, wait_timeout=2.0)
        assert store.insert(record())
        client.script_flush()
        assert store.unlock("alice")
        client.script_flush()
        assert store.set_meta("cipher", "none", expected=None)
        assert store.get_meta("cipher") == "none"
        client.set(store.user_key("mallory"), "not a hash")
        with pytest.raises(StoreError, match=r"during unlock \(ResponseError\)"):
            store.unlock("mallory")
