"""The Redis stores' less travelled paths: every operation on a dead server, the async admin paths.

The contract suites cover what a working server does; these tests cover how each operation
fails (always a StoreError, never an acceptance, never a raw client exception) and the async
store's index repair and script reloading, against a real server from tests/redis_server.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from redis_server import RedisServer
from totpcore import AsyncRedisStore, RedisStore, Status, StoreError, UserRecord
from totpcore.stores import Limits

LIMITS = Limits(free=5, base=1.0, cap=900.0, lockout=100)
NOW = 1_700_000_000.0


def _record(user_id: str = "alice") -> UserRecord:
    """An ACTIVE record with generation 7."""
    return UserRecord(user_id, Status.ACTIVE, b"k" * 20, 7)


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _operations(store: Any) -> dict[str, Callable[[], Any]]:
    """Every store operation, ready to call (sync store) or to await (async store)."""
    return {
        "get": lambda: store.get("alice"),
        "user_ids": lambda: store.user_ids(after="a", limit=3),
        "insert": lambda: store.insert(_record()),
        "replace": lambda: store.replace(_record(), generation=7),
        "delete": lambda: store.delete("alice"),
        "begin_attempt": lambda: store.begin_attempt(
            "alice", status=Status.ACTIVE, now=NOW, limits=LIMITS
        ),
        "mark_used": lambda: store.mark_used(
            "alice", generation=7, step=1, drift=0, allow_equal=False, charged_at=NOW
        ),
        "activate": lambda: store.activate("alice", generation=7, step=1, drift=0, charged_at=NOW),
        "resync": lambda: store.resync("alice", generation=7, step=3, drift=0, charged_at=NOW),
        "set_recovery_hashes": lambda: store.set_recovery_hashes(
            "alice", generation=7, hashes=("a$1",)
        ),
        "consume_recovery_hash": lambda: store.consume_recovery_hash(
            "alice", generation=7, code_hash="a$1", charged_at=NOW
        ),
        "set_secret": lambda: store.set_secret(
            "alice", generation=7, expected=b"k" * 20, secret=b"n" * 20
        ),
        "unlock": lambda: store.unlock("alice"),
        "get_meta": lambda: store.get_meta("cipher"),
        "set_meta": lambda: store.set_meta("cipher", "none", expected=None),
        "rebuild_index": lambda: store.rebuild_index(),
    }


def test_every_sync_operation_on_a_dead_server_is_a_store_error() -> None:
    """Each RedisStore operation against a closed port raises StoreError naming no data."""
    url = f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"
    store = RedisStore.from_url(url, socket_connect_timeout=0.5)
    try:
        for name, operation in _operations(store).items():
            with pytest.raises(StoreError) as caught:
                operation()
            assert "s3cret" not in str(caught.value), name
    finally:
        store.close()


def test_every_async_operation_on_a_dead_server_is_a_store_error() -> None:
    """Each AsyncRedisStore operation against a closed port raises StoreError naming no data."""

    async def run() -> None:
        url = f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"
        store = AsyncRedisStore.from_url(url, socket_connect_timeout=0.5)
        try:
            for name, operation in _operations(store).items():
                awaitable: Coroutine[Any, Any, Any] = operation()
                with pytest.raises(StoreError) as caught:
                    await awaitable
                assert "s3cret" not in str(caught.value), name
        finally:
            await store.aclose()

    asyncio.run(run())


def test_async_index_repair_and_script_reload(redis_server: RedisServer) -> None:
    """The async store rebuilds a lost index, and reloads its scripts after SCRIPT FLUSH."""

    async def run() -> None:
        async with AsyncRedisStore.from_url(redis_server.url, prefix="paths:") as store:
            for name in ("carol", "alice", "bob"):
                assert await store.insert(_record(name))
            await store.client.delete("paths:users")  # the listing index is lost
            assert await store.user_ids() == []
            assert await store.rebuild_index() == 3
            assert await store.user_ids() == ["alice", "bob", "carol"]
            await store.client.script_flush()
            assert await store.mark_used(
                "alice", generation=7, step=5, drift=0, allow_equal=False, charged_at=NOW
            )
            record = await store.get("alice")
            assert record is not None
            assert record.last_step == 5
            await store.client.flushdb()

    asyncio.run(run())
