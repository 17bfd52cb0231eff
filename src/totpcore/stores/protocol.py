"""The storage contract: record types and the runtime-checkable :class:`Store` protocol.

A store keeps one :class:`UserRecord` per user and performs a handful of operations, each of
which must be atomic: a single statement, a transaction or a script, never a read followed by a
separate write. :class:`~totpcore.testing.StoreContract` proves each guarantee for a store.

Stores know nothing of OTP arithmetic. They compare integers, count failures with the formula
in :func:`totpcore.policy.delay_after`, and report whether each conditional write won.

Every conditional operation names the record's ``generation``: a random number that changes
whenever the secret does (enable, reset). An operation started against the old secret can
therefore never succeed after an admin reset, however the calls interleave.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["Attempt", "Limits", "Status", "Store", "UserRecord"]


class Status(enum.Enum):
    """Where a user is in the two-factor lifecycle."""

    #: No second factor (never enabled, or disabled by an admin).
    DISABLED = "disabled"
    #: Enabled by an admin; the user must scan the secret and confirm a code at next login.
    SETUP_PENDING = "setup_pending"
    #: Set up and required at every login.
    ACTIVE = "active"


class UserRecord(NamedTuple):
    """Everything stored about one user's second factor, and nothing derived from it.

    Immutable; a named tuple rather than a frozen dataclass because stores build one on every
    verification and a tuple is several times cheaper to construct.

    Attributes:
        user_id: The host application's identifier for the user.
        status: ``SETUP_PENDING`` or ``ACTIVE`` (a disabled user has no record).
        secret: The key, encrypted when the service has a cipher (never shown in ``repr``).
        generation: Random number replaced whenever the secret is; guards every conditional
            write against a concurrent reset.
        last_step: The last accepted time step, or ``None`` before the first.
        drift: Learned clock error of the user's device, in steps (negative: slow).
        failures: Consecutive failed attempts (charged before each code is evaluated).
        last_failure_at: Unix time of the latest charged attempt, or ``None``.
        locked_at: Unix time the lock began, or ``None`` when not locked.
        recovery_hashes: Hashes of the unused recovery codes (never the codes).
    """

    user_id: str
    status: Status
    secret: bytes
    generation: int
    last_step: int | None = None
    drift: int = 0
    failures: int = 0
    last_failure_at: float | None = None
    locked_at: float | None = None
    recovery_hashes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"UserRecord(user_id={self.user_id!r}, status={self.status}, "
            f"generation={self.generation}, last_step={self.last_step}, drift={self.drift}, "
            f"failures={self.failures}, last_failure_at={self.last_failure_at}, "
            f"locked_at={self.locked_at}, recovery_codes={len(self.recovery_hashes)})"
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """The throttle parameters a store applies inside :meth:`Store.begin_attempt`.

    Attributes:
        free: Consecutive failures allowed without delay.
        base: First delay, in seconds, doubling per further failure.
        cap: Largest delay, in seconds.
        lockout: Failure count at which the user is locked.
    """

    free: int
    base: float
    cap: float
    lockout: int


class Attempt(NamedTuple):
    """What :meth:`Store.begin_attempt` decided.

    Attributes:
        record: The record as it was when the attempt was charged (or refused); ``None`` when
            the user has no record.
        allowed: ``True`` if the attempt was charged and the code may now be evaluated.
    """

    record: UserRecord | None
    allowed: bool


@runtime_checkable
class Store(Protocol):
    """Where :class:`~totpcore.TwoFactor` keeps its records.

    Every method either completes or leaves the record exactly as it was; backend failures are
    raised as :class:`~totpcore.StoreError`. Conditional writes return ``False`` (not an
    exception) when their condition does not hold, including when the user has no record or a
    different ``generation``.
    """

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None``."""
        ...

    def user_ids(self) -> list[str]:
        """Return the ids of all users with a record, sorted."""
        ...

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet; return whether it was stored."""
        ...

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's whole record if its generation is ``generation``."""
        ...

    def delete(self, user_id: str) -> bool:
        """Remove the user's record; return whether there was one."""
        ...

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Atomically charge one attempt, if the user may make one now.

        The attempt is allowed when the record exists with ``status``, ``failures`` is below
        ``limits.lockout``, and ``now`` is at least ``last_failure_at + delay_after(failures)``.
        Then, in the same atomic step, ``failures`` grows by one, ``last_failure_at`` becomes
        ``now``, and ``locked_at`` becomes ``now`` if ``failures`` reached ``limits.lockout``.
        Charging before evaluation is what bounds parallel guesses: N concurrent attempts
        raise ``failures`` by exactly the number allowed, and none past the limit is allowed.
        """
        ...

    def mark_used(
        self, user_id: str, *, generation: int, step: int, drift: int, allow_equal: bool
    ) -> bool:
        """Compare-and-set the last used step; on success also clear the failures.

        Succeeds only if the record is ACTIVE with ``generation`` and its ``last_step`` is
        ``None`` or below ``step`` (or equal, when ``allow_equal``). Sets ``last_step = step``,
        ``drift``, ``failures = 0`` and clears ``last_failure_at`` and ``locked_at``.
        """
        ...

    def activate(self, user_id: str, *, generation: int, step: int, drift: int) -> bool:
        """SETUP_PENDING -> ACTIVE if ``generation`` matches; the confirming step counts as used."""
        ...

    def resync(
        self,
        user_id: str,
        *,
        generation: int,
        expected_last_step: int | None,
        step: int,
        drift: int,
    ) -> bool:
        """Set ``last_step`` (even backwards) and ``drift`` if ``last_step`` is still as read.

        Clears failures. Two resyncs racing on the same read cannot both succeed.
        """
        ...

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record with ``generation``."""
        ...

    def consume_recovery_hash(self, user_id: str, *, generation: int, code_hash: str) -> bool:
        """Remove ``code_hash`` if present, and clear failures; True only for the one winner."""
        ...

    def unlock(self, user_id: str) -> bool:
        """Clear failures, ``last_failure_at`` and ``locked_at``; return whether the user exists."""
        ...
