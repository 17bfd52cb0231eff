"""Async stores built on a sync one: the same rules, the same atomicity, awaited.

:class:`AsyncAdapter` gives a sync :class:`~totpcore.Store` the :class:`~totpcore.AsyncStore`
interface. Subclasses decide how a call runs: inline (a store that never blocks, such as
:class:`~totpcore.AsyncMemoryStore`), or in a worker thread (a store that does file or network
I/O, such as :class:`~totpcore.AsyncSQLiteStore`). Either way the atomic section stays inside
the sync store, so no await can split a read from its write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = ["AsyncAdapter"]

_T = TypeVar("_T")


class AsyncAdapter:
    """The :class:`~totpcore.AsyncStore` operations, each delegated to a sync store."""

    def __init__(self, store: Any) -> None:
        self._sync = store

    @property
    def sync(self) -> Any:
        """The sync store underneath (for admin scripts and tests)."""
        return self._sync

    async def _call(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one sync operation; subclasses choose inline or in a worker thread."""
        raise NotImplementedError

    async def get(self, user_id: str) -> UserRecord | None:
        """As :meth:`Store.get`."""
        return await self._call(self._sync.get, user_id)

    async def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """As :meth:`UserListing.user_ids`."""
        return await self._call(self._sync.user_ids, after=after, limit=limit)

    async def insert(self, record: UserRecord) -> bool:
        """As :meth:`Store.insert`."""
        return await self._call(self._sync.insert, record)

    async def insert_many(self, records: Sequence[UserRecord]) -> list[bool]:
        """As :meth:`BulkInsert.insert_many`."""
        return await self._call(self._sync.insert_many, records)

    async def replace(self, record: UserRecord, *, generation: int) -> bool:
        """As :meth:`Store.replace`."""
        return await self._call(self._sync.replace, record, generation=generation)

    async def delete(self, user_id: str) -> bool:
        """As :meth:`Store.delete`."""
        return await self._call(self._sync.delete, user_id)

    async def begin_attempt(
        self, user_id: str, *, status: Status, now: float, limits: Limits
    ) -> Attempt:
        """As :meth:`Store.begin_attempt`."""
        return await self._call(
            self._sync.begin_attempt, user_id, status=status, now=now, limits=limits
        )

    async def charge_and_mark(
        self,
        user_id: str,
        *,
        status: Status,
        now: float,
        limits: Limits,
        evaluate: Callable[[Attempt], object],
    ) -> tuple[object, bool]:
        """As :meth:`OneCommitCheck.charge_and_mark`: the whole login check, atomically.

        ``evaluate`` runs where the sync store runs it (inline, or in the worker thread).
        """
        return await self._call(
            self._sync.charge_and_mark,
            user_id,
            status=status,
            now=now,
            limits=limits,
            evaluate=evaluate,
        )

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
        """As :meth:`Store.mark_used`."""
        return await self._call(
            self._sync.mark_used,
            user_id,
            generation=generation,
            step=step,
            drift=drift,
            allow_equal=allow_equal,
            charged_at=charged_at,
        )

    async def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`Store.activate`."""
        return await self._call(
            self._sync.activate,
            user_id,
            generation=generation,
            step=step,
            drift=drift,
            charged_at=charged_at,
        )

    async def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`Store.resync`."""
        return await self._call(
            self._sync.resync,
            user_id,
            generation=generation,
            step=step,
            drift=drift,
            charged_at=charged_at,
        )

    async def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """As :meth:`Store.set_recovery_hashes`."""
        return await self._call(
            self._sync.set_recovery_hashes, user_id, generation=generation, hashes=hashes
        )

    async def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """As :meth:`Store.consume_recovery_hash`."""
        return await self._call(
            self._sync.consume_recovery_hash,
            user_id,
            generation=generation,
            code_hash=code_hash,
            charged_at=charged_at,
        )

    async def set_secret(
        self, user_id: str, *, generation: int, expected: bytes, secret: bytes
    ) -> bool:
        """As :meth:`Store.set_secret`."""
        return await self._call(
            self._sync.set_secret, user_id, generation=generation, expected=expected, secret=secret
        )

    async def unlock(self, user_id: str) -> bool:
        """As :meth:`Store.unlock`."""
        return await self._call(self._sync.unlock, user_id)

    async def get_meta(self, name: str) -> str | None:
        """As :meth:`Store.get_meta`."""
        return await self._call(self._sync.get_meta, name)

    async def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """As :meth:`Store.set_meta`."""
        return await self._call(self._sync.set_meta, name, value, expected=expected)
