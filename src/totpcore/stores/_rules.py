"""What each store operation does to a record, as pure functions.

These are the reference semantics of the :class:`~totpcore.Store` operations. The stores that
can run Python inside their atomic section (MemoryStore under its lock, SQLiteStore inside an
immediate transaction) apply them directly, so the rules exist once; a store that cannot (a
Lua script, one SQL statement) implements the same rules natively, and the shared contract
suite holds both to them.

Each function takes the record as read (``None``: no record) and returns the record to write,
or ``None`` when the operation's condition does not hold and nothing may change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from totpcore._throttle import BUDGET_SECONDS, delay_after
from totpcore.stores.protocol import Attempt, Limits, MarkRequest, Status, UserRecord

__all__ = [
    "activate",
    "charge",
    "charge_and_mark",
    "consume_recovery_hash",
    "mark_used",
    "resync",
    "set_recovery_hashes",
    "set_secret",
    "unlock",
]

#: How far a charge's stamp is pushed above the previous one when the clock has not passed it.
STAMP_NUDGE = 0.001
_ACTIVE = Status.ACTIVE
# Builds a record from a tuple of all its fields, in order: tuple.__new__ bound in C, without
# the Python-level constructor NamedTuple generates (this runs twice per verify).
_new = functools.partial(tuple.__new__, UserRecord)
_attempt = functools.partial(tuple.__new__, Attempt)


def charge(
    record: UserRecord | None, *, status: Status, now: float, limits: Limits
) -> tuple[UserRecord | None, Attempt]:
    """Charge one attempt: the record to write (``None``: no write) and the attempt's outcome."""
    if record is None:
        return None, Attempt(None, False)
    # Unpacked and rebuilt positionally: this runs on every verify, and NamedTuple._replace
    # costs as much as the rest of the rule.
    (user_id, status_, secret, generation, algorithm, digits, period, last_step, drift,
     last, since, locked_at, log, hashes) = record  # fmt: skip
    if status_ is not status or locked_at is not None:
        return None, _attempt((record, False))
    if log:
        log, run, recent = _tally(log, since, now - BUDGET_SECONDS)
        lockout = limits.lockout
        if run >= lockout or recent >= lockout:
            # A limit is reached: this attempt is refused and the lock is written, so every
            # service on the store sees it whatever its own policy.
            locked = record._replace(locked_at=now, failure_log=log)
            return locked, Attempt(locked, False)
        delay = delay_after(run, free=limits.free, base=limits.base, cap=limits.cap)
        # Within the free failures there is no wait, whatever the clock; past them a clock
        # that stepped back before the last attempt only makes the wait longer.
        if delay and last is not None and now < last + delay:
            return None, Attempt(record, False)
    # Stamps rise strictly, even when the clock stands still or steps back, so a success can
    # take back exactly its own charge and never another attempt's. The nudge is a fixed
    # millisecond (not one float step) so that stores in other languages compute the same.
    stamp = now if last is None or now > last else last + STAMP_NUDGE
    charged = _new(
        (user_id, status_, secret, generation, algorithm, digits, period, last_step, drift,
         stamp, since, locked_at, (*log, stamp), hashes)
    )  # fmt: skip
    return charged, _attempt((charged, True))


def charge_and_mark(
    record: UserRecord | None,
    *,
    status: Status,
    now: float,
    limits: Limits,
    evaluate: Callable[[Attempt], object],
) -> tuple[UserRecord | None, tuple[object, bool]]:
    """Charge, evaluate and mark in one step (see :class:`~totpcore.stores.OneCommitCheck`).

    Returns the record to write (``None``: no write) and what the caller answers: the
    decision ``evaluate`` made and whether its compare-and-set won. An exception from
    ``evaluate`` propagates before anything is written, so the store keeps the record as read.
    """
    charged, attempt = charge(record, status=status, now=now, limits=limits)
    decision = evaluate(attempt)
    # A plain attribute test: isinstance() against the runtime-checkable MarkRequest protocol
    # costs more than the rest of the decision.
    if not attempt.allowed or getattr(decision, "charged_at", None) is None:
        return charged, (decision, False)
    mark: MarkRequest = decision  # type: ignore[assignment]  # it has charged_at: a mark
    marked = mark_used(
        charged,
        generation=mark.generation,
        step=mark.step,
        drift=mark.drift,
        allow_equal=mark.allow_equal,
        charged_at=mark.charged_at,
    )
    return (charged, (decision, False)) if marked is None else (marked, (decision, True))


def _tally(
    log: tuple[float, ...], since: float | None, cutoff: float
) -> tuple[tuple[float, ...], int, int]:
    """Prune the log and count it: (kept stamps, consecutive failures, stamps in 24 hours).

    A stamp is kept while the budget (the last 24 hours) or the current run of failures
    (after the latest fresh success) still needs it.
    """
    run = recent = 0
    kept = []
    for stamp in log:
        in_run = since is None or stamp > since
        in_day = stamp > cutoff
        if in_run or in_day:
            kept.append(stamp)
            run += in_run
            recent += in_day
    return (log if len(kept) == len(log) else tuple(kept)), run, recent


def _refund(log: tuple[float, ...], charged_at: float) -> tuple[float, ...]:
    """The failure log without the stamp ``charged_at`` (a success takes back its own charge)."""
    if not log or charged_at not in log:
        return log
    if log[-1] == charged_at:  # the usual case: this attempt was the latest charged
        return log[:-1]
    entries = list(log)
    entries.remove(charged_at)
    return tuple(entries)


def _later(since: float | None, stamp: float) -> float:
    """The latest fresh success after one more at ``stamp`` (they may complete out of order)."""
    return stamp if since is None or stamp > since else since


def _usable(record: UserRecord | None, generation: int, status: Status) -> UserRecord | None:
    """The record if it has this generation and status."""
    if record is None or record.generation != generation or record.status is not status:
        return None
    return record


def mark_used(
    record: UserRecord | None,
    *,
    generation: int,
    step: int,
    drift: int,
    allow_equal: bool,
    charged_at: float,
) -> UserRecord | None:
    """Compare-and-set the replay mark (see :meth:`Store.mark_used`)."""
    if record is None:
        return None
    (user_id, status, secret, generation_, algorithm, digits, period, last_step, _drift,
     last, since, locked_at, log, hashes) = record  # fmt: skip
    if generation_ != generation or status is not _ACTIVE:
        return None
    if last_step is None or last_step < step:
        # _later(), inlined: this runs on every accepted login.
        if since is None or charged_at > since:
            since = charged_at
    elif not (allow_equal and last_step == step and since is not None):
        # A repeat is of a step this store accepted: an imported record's mark (never accepted
        # here, and no fresh success since) allows none.
        return None
    # A repeat (API-header mode) takes back its own charge and nothing more: it must not end
    # an attacker's run of failures, or one sniffed header would reset the throttle. The
    # usual log holds just this attempt's stamp, taken back without a call.
    log = () if log == (charged_at,) else _refund(log, charged_at)
    return _new(
        (user_id, status, secret, generation, algorithm, digits, period, step, drift,
         last, since, locked_at, log, hashes)
    )  # fmt: skip


def activate(
    record: UserRecord | None, *, generation: int, step: int, drift: int, charged_at: float
) -> UserRecord | None:
    """SETUP_PENDING -> ACTIVE with the confirming step used (see :meth:`Store.activate`)."""
    current = _usable(record, generation, Status.SETUP_PENDING)
    if current is None:
        return None
    return current._replace(
        status=_ACTIVE,
        last_step=step,
        drift=drift,
        last_success_at=_later(current.last_success_at, charged_at),
        failure_log=_refund(current.failure_log, charged_at),
    )


def resync(
    record: UserRecord | None, *, generation: int, step: int, drift: int, charged_at: float
) -> UserRecord | None:
    """Move the mark to ``step`` if the pair lies above it (see :meth:`Store.resync`)."""
    current = _usable(record, generation, _ACTIVE)
    if current is None:
        return None
    if current.last_step is not None and current.last_step >= step - 1:
        return None
    return current._replace(
        last_step=step,
        drift=drift,
        last_success_at=_later(current.last_success_at, charged_at),
        failure_log=_refund(current.failure_log, charged_at),
    )


def set_recovery_hashes(
    record: UserRecord | None, *, generation: int, hashes: tuple[str, ...]
) -> UserRecord | None:
    """Replace the recovery code hashes of an ACTIVE record."""
    current = _usable(record, generation, _ACTIVE)
    return None if current is None else current._replace(recovery_hashes=tuple(hashes))


def consume_recovery_hash(
    record: UserRecord | None, *, generation: int, code_hash: str, charged_at: float
) -> UserRecord | None:
    """Remove one recovery code hash (see :meth:`Store.consume_recovery_hash`)."""
    current = _usable(record, generation, _ACTIVE)
    if current is None or code_hash not in current.recovery_hashes:
        return None
    return current._replace(
        recovery_hashes=tuple(h for h in current.recovery_hashes if h != code_hash),
        last_success_at=_later(current.last_success_at, charged_at),
        failure_log=_refund(current.failure_log, charged_at),
    )


def set_secret(
    record: UserRecord | None, *, generation: int, expected: bytes, secret: bytes
) -> UserRecord | None:
    """Replace the secret bytes if generation and secret are still as read."""
    if record is None or record.generation != generation or record.secret != expected:
        return None
    return record._replace(secret=secret)


def unlock(record: UserRecord | None) -> UserRecord | None:
    """Empty the failure log and lift the lock; ``last_failure_at`` stays (stamps keep rising)."""
    if record is None:
        return None
    return record._replace(locked_at=None, failure_log=())
