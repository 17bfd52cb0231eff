"""MemoryStore: records in a dict, every operation under one lock.

Thread-safe and fast, but single-process: each process has its own dict, so several app
servers (or several worker processes of one server) must share a SQLite, Redis or PostgreSQL
store instead. Records vanish when the process exits. Meant for tests and single-process apps.

Records are immutable; each operation applies its rule from :mod:`totpcore.stores._rules` to
the record under the lock and puts the result in place.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from totpcore.stores import _rules
from totpcore.stores._adapter import AsyncAdapter
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = ["AsyncMemoryStore", "MemoryStore"]

_T = TypeVar("_T")


class MemoryStore:
    """A thread-safe in-process :class:`~totpcore.Store` (not shared between processes)."""

    def __init__(self) -> None:
        self._rows: dict[str, UserRecord] = {}
        self._meta: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._rows)} users>)"

    def _apply(self, user_id: str, rule: Callable[[UserRecord | None], UserRecord | None]) -> bool:
        """Apply a rule to the user's record atomically; return whether it wrote."""
        with self._lock:
            changed = rule(self._rows.get(user_id))
            if changed is None:
                return False
            self._rows[user_id] = changed
            return True

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None``."""
        return self._rows.get(user_id)

    def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Return up to ``limit`` user ids sorted, all strictly greater than ``after``."""
        with self._lock:
            ids = sorted(self._rows)
        if after is not None:
            ids = ids[bisect.bisect_right(ids, after) :]
        return ids if limit is None else ids[: max(limit, 0)]

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet."""
        with self._lock:
            if record.user_id in self._rows:
                return False
            self._rows[record.user_id] = record
            return True

    def insert_many(self, records: Sequence[UserRecord]) -> list[bool]:
        """Insert each record whose user has none yet, under one lock."""
        with self._lock:
            inserted = []
            for record in records:
                fresh = record.user_id not in self._rows
                if fresh:
                    self._rows[record.user_id] = record
                inserted.append(fresh)
            return inserted

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's record if its generation is ``generation``."""
        return self._apply(
            record.user_id,
            lambda row: record if row is not None and row.generation == generation else None,
        )

    def delete(self, user_id: str) -> bool:
        """Remove the user's record."""
        with self._lock:
            return self._rows.pop(user_id, None) is not None

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Charge one attempt if the user may make one now (see :class:`~totpcore.Store`)."""
        with self._lock:
            changed, attempt = _rules.charge(
                self._rows.get(user_id), status=status, now=now, limits=limits
            )
            if changed is not None:
                self._rows[user_id] = changed
            return attempt

    def charge_and_mark(
        self,
        user_id: str,
        *,
        status: Status,
        now: float,
        limits: Limits,
        evaluate: Callable[[Attempt], object],
    ) -> tuple[object, bool]:
        """A whole login check under one hold of the lock (see :class:`~totpcore.OneCommitCheck`).

        Taking the lock once instead of twice, and reading the record once, is what a login
        on this store costs least with; ``evaluate`` is the service's pure decision.
        """
        with self._lock:
            changed, outcome = _rules.charge_and_mark(
                self._rows.get(user_id), status=status, now=now, limits=limits, evaluate=evaluate
            )
            if changed is not None:
                self._rows[user_id] = changed
            return outcome

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
        with self._lock:
            changed = _rules.mark_used(
                self._rows.get(user_id),
                generation=generation,
                step=step,
                drift=drift,
                allow_equal=allow_equal,
                charged_at=charged_at,
            )
            if changed is None:
                return False
            self._rows[user_id] = changed
            return True

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
        return self._meta.get(name)

    def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """Set a store-wide setting if its current value is ``expected``."""
        with self._lock:
            if self._meta.get(name) != expected:
                return False
            self._meta[name] = value
            return True


class AsyncMemoryStore(AsyncAdapter):
    """The asyncio twin of :class:`MemoryStore`, for :class:`~totpcore.AsyncTwoFactor`.

    Operations run inline: they never block (a dict under a lock held for microseconds), so a
    worker thread would cost more than it saves. Each is atomic, as in :class:`MemoryStore`.

    Args:
        store: The :class:`MemoryStore` to share, e.g. with a sync service in the same
            process; a new one when omitted.
    """

    def __init__(self, store: MemoryStore | None = None) -> None:
        super().__init__(MemoryStore() if store is None else store)

    def __repr__(self) -> str:
        return f"Async{self._sync!r}"

    async def _call(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return function(*args, **kwargs)
