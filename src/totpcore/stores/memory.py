"""MemoryStore: records in a dict, every operation under one lock.

Thread-safe and fast, but single-process: each process has its own dict, so several app
servers (or several worker processes of one server) must share a SQLite, Redis or PostgreSQL
store instead. Records vanish when the process exits. Meant for tests and single-process apps.
"""

from __future__ import annotations

import threading

from totpcore.policy import delay_after
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = ["MemoryStore"]


class _Row:
    """A mutable record, changed in place under the store's lock."""

    __slots__ = (
        "drift",
        "failures",
        "generation",
        "last_failure_at",
        "last_step",
        "locked_at",
        "recovery_hashes",
        "secret",
        "status",
        "user_id",
    )

    def __init__(self, record: UserRecord) -> None:
        self.user_id = record.user_id
        self.status = record.status
        self.secret = record.secret
        self.generation = record.generation
        self.last_step = record.last_step
        self.drift = record.drift
        self.failures = record.failures
        self.last_failure_at = record.last_failure_at
        self.locked_at = record.locked_at
        self.recovery_hashes = record.recovery_hashes

    def snapshot(self) -> UserRecord:
        """Return the row as a frozen record."""
        # Positional: measurably cheaper on the verify path than keywords.
        return UserRecord(
            self.user_id,
            self.status,
            self.secret,
            self.generation,
            self.last_step,
            self.drift,
            self.failures,
            self.last_failure_at,
            self.locked_at,
            self.recovery_hashes,
        )

    def clear_failures(self) -> None:
        """Forget the failure count and any lock."""
        self.failures = 0
        self.last_failure_at = None
        self.locked_at = None


class MemoryStore:
    """A thread-safe in-process :class:`~totpcore.Store` (not shared between processes)."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self._rows)} users>)"

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None``."""
        with self._lock:
            row = self._rows.get(user_id)
            return None if row is None else row.snapshot()

    def user_ids(self) -> list[str]:
        """Return the ids of all users with a record, sorted."""
        with self._lock:
            return sorted(self._rows)

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet."""
        with self._lock:
            if record.user_id in self._rows:
                return False
            self._rows[record.user_id] = _Row(record)
            return True

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's record if its generation is ``generation``."""
        with self._lock:
            row = self._rows.get(record.user_id)
            if row is None or row.generation != generation:
                return False
            self._rows[record.user_id] = _Row(record)
            return True

    def delete(self, user_id: str) -> bool:
        """Remove the user's record."""
        with self._lock:
            return self._rows.pop(user_id, None) is not None

    def _row(self, user_id: str, generation: int, status: Status) -> _Row | None:
        """The user's row if it has this generation and status (call with the lock held)."""
        row = self._rows.get(user_id)
        if row is None or row.generation != generation or row.status is not status:
            return None
        return row

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Charge one attempt if the user may make one now (see :class:`~totpcore.Store`)."""
        with self._lock:
            row = self._rows.get(user_id)
            if row is None:
                return Attempt(None, False)
            allowed = (
                row.status is status
                and row.failures < limits.lockout
                and (
                    row.last_failure_at is None
                    or now
                    >= row.last_failure_at
                    + delay_after(row.failures, free=limits.free, base=limits.base, cap=limits.cap)
                )
            )
            if allowed:
                row.failures += 1
                row.last_failure_at = now
                if row.failures >= limits.lockout:
                    row.locked_at = now
            return Attempt(row.snapshot(), allowed)

    def mark_used(
        self, user_id: str, *, generation: int, step: int, drift: int, allow_equal: bool
    ) -> bool:
        """Compare-and-set the last used step (see :class:`~totpcore.Store`)."""
        with self._lock:
            row = self._row(user_id, generation, Status.ACTIVE)
            if row is None or not (
                row.last_step is None
                or row.last_step < step
                or (allow_equal and row.last_step == step)
            ):
                return False
            row.last_step = step
            row.drift = drift
            row.clear_failures()
            return True

    def activate(self, user_id: str, *, generation: int, step: int, drift: int) -> bool:
        """SETUP_PENDING -> ACTIVE with the confirming step marked used."""
        with self._lock:
            row = self._row(user_id, generation, Status.SETUP_PENDING)
            if row is None:
                return False
            row.status = Status.ACTIVE
            row.last_step = step
            row.drift = drift
            row.clear_failures()
            return True

    def resync(
        self,
        user_id: str,
        *,
        generation: int,
        expected_last_step: int | None,
        step: int,
        drift: int,
    ) -> bool:
        """Move ``last_step`` (even backwards) if it is still what the caller read."""
        with self._lock:
            row = self._row(user_id, generation, Status.ACTIVE)
            if row is None or row.last_step != expected_last_step:
                return False
            row.last_step = step
            row.drift = drift
            row.clear_failures()
            return True

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record."""
        with self._lock:
            row = self._row(user_id, generation, Status.ACTIVE)
            if row is None:
                return False
            row.recovery_hashes = tuple(hashes)
            return True

    def consume_recovery_hash(self, user_id: str, *, generation: int, code_hash: str) -> bool:
        """Remove one recovery code hash; only one caller can win it."""
        with self._lock:
            row = self._row(user_id, generation, Status.ACTIVE)
            if row is None or code_hash not in row.recovery_hashes:
                return False
            row.recovery_hashes = tuple(h for h in row.recovery_hashes if h != code_hash)
            row.clear_failures()
            return True

    def unlock(self, user_id: str) -> bool:
        """Clear the failure count and lock."""
        with self._lock:
            row = self._rows.get(user_id)
            if row is None:
                return False
            row.clear_failures()
            return True
