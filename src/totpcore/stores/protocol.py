"""The storage contract: record types and the runtime-checkable :class:`Store` protocol.

A store keeps one :class:`UserRecord` per user and performs a handful of operations, each of
which must be atomic: a single statement, a transaction or a script, never a read followed by a
separate write. :mod:`totpcore.stores._rules` states what each operation does to a record, as
pure functions; :class:`~totpcore.testing.StoreContract` proves each guarantee for a store.

Stores know nothing of OTP arithmetic. They compare integers and times, compute delays with
:func:`totpcore.policy.delay_after`, and report whether each conditional write won.

Every conditional operation names the record's ``generation``: a random number that changes
whenever the secret does (enable, reset). An operation started against the old secret can
therefore never succeed after an admin reset, however the calls interleave.

The rules every store keeps (schema version 2):

- **Replay mark.** ``last_step`` only moves up, through a compare-and-set; only ``replace``
  (an admin reset) moves it back.
- **Throttle.** An attempt is charged before its code is evaluated: it gets a *stamp* (its
  time, nudged to stay strictly above every earlier stamp of the record, so each attempt is
  told apart from every other) and the stamp joins ``failure_log``. A success removes its own
  stamp, and nothing else; a fresh success (a new step, setup, resync, a recovery code) also
  moves ``last_success_at`` to its stamp. The consecutive failures that drive the delay are the
  log's stamps above ``last_success_at``; the guessing budget is its stamps of the last 24
  hours: at most ``lockout`` of either, whatever successes interleave. Only ``unlock`` and
  ``replace`` empty the log.
- **Sticky lock.** An attempt past a limit sets ``locked_at``; every later attempt is refused,
  whatever limits the caller passes, until ``unlock`` or ``replace``.
- **Clock.** Within the free failures no wait applies, whatever the clock says. Past them the
  wait is measured from ``last_failure_at``, so a clock that steps back never shortens it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "AsyncBulkInsert",
    "AsyncStore",
    "AsyncUserListing",
    "Attempt",
    "BulkInsert",
    "Limits",
    "MarkRequest",
    "OneCommitCheck",
    "Status",
    "Store",
    "UserListing",
    "UserRecord",
]


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
            write against a concurrent reset, and is bound into the encrypted secret.
        algorithm: The user's hash algorithm, fixed at enrolment.
        digits: The user's code length, fixed at enrolment.
        period: The user's time step in seconds, fixed at enrolment.
        last_step: The replay mark: the highest accepted time step, or ``None`` before the
            first.
        drift: Learned clock error of the user's device, in steps (negative: slow).
        last_failure_at: The stamp of the latest charged attempt (Unix time, nudged up to stay
            strictly increasing), or ``None`` before the first.
        last_success_at: The stamp of the latest fresh success, or ``None``: the consecutive
            failures are the charges after it.
        locked_at: Unix time the lock began, or ``None`` when not locked.
        failure_log: The stamps of the charged attempts not taken back by a success: those of
            the last 24 hours and those after ``last_success_at`` are kept.
        recovery_hashes: Hashes of the unused recovery codes (never the codes).
    """

    user_id: str
    status: Status
    secret: bytes
    generation: int
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    last_step: int | None = None
    drift: int = 0
    last_failure_at: float | None = None
    last_success_at: float | None = None
    locked_at: float | None = None
    failure_log: tuple[float, ...] = ()
    recovery_hashes: tuple[str, ...] = ()

    @property
    def failures(self) -> int:
        """The number of consecutive failures (charged attempts since the latest fresh success)."""
        since = self.last_success_at
        if since is None:
            return len(self.failure_log)
        return sum(1 for stamp in self.failure_log if stamp > since)

    def __repr__(self) -> str:
        return (
            f"UserRecord(user_id={self.user_id!r}, status={self.status}, "
            f"generation={self.generation}, algorithm={self.algorithm}, digits={self.digits}, "
            f"period={self.period}, last_step={self.last_step}, drift={self.drift}, "
            f"failures={self.failures}, last_failure_at={self.last_failure_at}, "
            f"last_success_at={self.last_success_at}, locked_at={self.locked_at}, "
            f"failure_log=<{len(self.failure_log)} entries>, "
            f"recovery_codes={len(self.recovery_hashes)})"
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """The throttle parameters a store applies inside :meth:`Store.begin_attempt`.

    Attributes:
        free: Consecutive failures allowed without delay.
        base: First delay, in seconds, doubling per further failure.
        cap: Largest delay, in seconds.
        lockout: Consecutive failures, and charged attempts in any 24 hours, after which the
            next attempt locks the user.
    """

    free: int
    base: float
    cap: float
    lockout: int


class Attempt(NamedTuple):
    """What :meth:`Store.begin_attempt` decided.

    Attributes:
        record: The record as it was after the attempt was charged (or refused); ``None`` when
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
    different ``generation``. ``charged_at`` names the attempt whose charge a success takes
    back: the ``now`` its :meth:`begin_attempt` was given.
    """

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None``."""
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

        Refused without a write when there is no record, its status is not ``status``, it is
        locked, or the delay after the consecutive failures has not passed since
        ``last_failure_at``. Refused *and locked* (``locked_at = now``) when the consecutive
        failures, or the stamps of the last 24 hours, have reached ``limits.lockout``.
        Otherwise charged: a new stamp (``now``, or just above ``last_failure_at`` if the clock
        is not past it) becomes ``last_failure_at`` and joins the pruned ``failure_log``; the
        returned record carries it for the success to name as ``charged_at``. N concurrent
        attempts are charged exactly as N sequential ones would be.
        """
        ...

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
        """Compare-and-set the replay mark; on success take back the attempt's charge.

        Succeeds only if the record is ACTIVE with ``generation`` and its ``last_step`` is
        ``None`` or below ``step`` (or equal, when ``allow_equal``). Sets ``last_step = step``
        and ``drift``, and removes the ``charged_at`` stamp from ``failure_log``. A new step
        also moves ``last_success_at`` up to ``charged_at``; a repeat of the same step only
        takes back its own charge, so it never ends anybody else's run of failures.
        """
        ...

    def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """SETUP_PENDING -> ACTIVE if ``generation`` matches; the confirming step counts as used."""
        ...

    def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """Move the replay mark to ``step`` if both codes of the pair are above it.

        Succeeds only if the record is ACTIVE with ``generation`` and ``last_step`` is ``None``
        or below ``step - 1`` (the first code's step). Sets ``last_step`` and ``drift``, takes
        back the charge and moves ``last_success_at`` up to it.
        """
        ...

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record with ``generation``."""
        ...

    def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """Remove ``code_hash`` if present; True only for the one winner.

        The winner also takes back its charge and moves ``last_success_at`` up to it.
        """
        ...

    def set_secret(self, user_id: str, *, generation: int, expected: bytes, secret: bytes) -> bool:
        """Replace the stored secret bytes if generation and secret are still as read.

        For re-encryption under a new key; nothing else in the record changes.
        """
        ...

    def unlock(self, user_id: str) -> bool:
        """Empty the failure log and lift the lock; return whether the user exists.

        ``last_failure_at`` stays, so that stamps keep rising: a charge made before the unlock
        can never be confused with one made after it.
        """
        ...

    def get_meta(self, name: str) -> str | None:
        """Return a store-wide setting (e.g. the cipher's key fingerprint), or ``None``."""
        ...

    def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """Set a store-wide setting if its current value is ``expected``; return whether set."""
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """The asyncio twin of :class:`Store`, for :class:`~totpcore.AsyncTwoFactor`.

    The same operations with the same guarantees, as coroutines. Atomicity is the store's job
    exactly as for :class:`Store`: an operation must not await between its read and its write
    unless the backend holds a lock across the await (a transaction, a script).
    """

    async def get(self, user_id: str) -> UserRecord | None:
        """As :meth:`Store.get`."""
        ...

    async def insert(self, record: UserRecord) -> bool:
        """As :meth:`Store.insert`."""
        ...

    async def replace(self, record: UserRecord, *, generation: int) -> bool:
        """As :meth:`Store.replace`."""
        ...

    async def delete(self, user_id: str) -> bool:
        """As :meth:`Store.delete`."""
        ...

    async def begin_attempt(
        self, user_id: str, *, status: Status, now: float, limits: Limits
    ) -> Attempt:
        """As :meth:`Store.begin_attempt`."""
        ...

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
        ...

    async def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`Store.activate`."""
        ...

    async def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`Store.resync`."""
        ...

    async def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """As :meth:`Store.set_recovery_hashes`."""
        ...

    async def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """As :meth:`Store.consume_recovery_hash`."""
        ...

    async def set_secret(
        self, user_id: str, *, generation: int, expected: bytes, secret: bytes
    ) -> bool:
        """As :meth:`Store.set_secret`."""
        ...

    async def unlock(self, user_id: str) -> bool:
        """As :meth:`Store.unlock`."""
        ...

    async def get_meta(self, name: str) -> str | None:
        """As :meth:`Store.get_meta`."""
        ...

    async def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """As :meth:`Store.set_meta`."""
        ...


@runtime_checkable
class MarkRequest(Protocol):
    """What a decision asks :meth:`Store.mark_used` for; see :class:`OneCommitCheck`."""

    generation: int
    step: int
    drift: int
    allow_equal: bool
    charged_at: float


@runtime_checkable
class OneCommitCheck(Protocol):
    """An optional capability: a login check in one transaction, hence one durable commit.

    A store whose atomic section can run Python (SQLite's immediate transaction) may charge
    the attempt, hand it to ``evaluate`` (the service's pure decision: no I/O), and apply the
    compare-and-set the decision asks for, all before one commit. Stores that cannot (a Lua
    script, one SQL statement) keep the two operations of :class:`Store`.
    """

    def charge_and_mark(
        self,
        user_id: str,
        *,
        status: Status,
        now: float,
        limits: Limits,
        evaluate: Callable[[Attempt], object],
    ) -> tuple[object, bool]:
        """Charge, evaluate, mark: return what ``evaluate`` decided and whether the mark won.

        ``evaluate`` receives the attempt as :meth:`Store.begin_attempt` would return it. When
        the attempt was allowed and ``evaluate`` returned a :class:`MarkRequest`, the store
        applies :meth:`Store.mark_used`'s rule to it; the record is written once either way.
        """
        ...


@runtime_checkable
class BulkInsert(Protocol):
    """An optional capability: inserting many records in few transactions (bulk enrolment)."""

    def insert_many(self, records: Sequence[UserRecord]) -> list[bool]:
        """Insert each record whose user has none yet, in one transaction.

        Returns, per record, whether it was inserted. All or nothing: if the store fails, none
        of these records is inserted.
        """
        ...


@runtime_checkable
class AsyncBulkInsert(Protocol):
    """The asyncio twin of :class:`BulkInsert`."""

    async def insert_many(self, records: Sequence[UserRecord]) -> list[bool]:
        """As :meth:`BulkInsert.insert_many`."""
        ...


@runtime_checkable
class UserListing(Protocol):
    """An optional capability: listing the enrolled users, a page at a time.

    Kept out of :class:`Store` so that a store never has to scan every key to serve a login;
    admin tools (``totpcore admin list``, key rotation) need it.
    """

    def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Return up to ``limit`` user ids sorted, all strictly greater than ``after``."""
        ...


@runtime_checkable
class AsyncUserListing(Protocol):
    """The asyncio twin of :class:`UserListing`."""

    async def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Return up to ``limit`` user ids sorted, all strictly greater than ``after``."""
        ...
