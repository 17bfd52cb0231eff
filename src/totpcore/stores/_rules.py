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

from totpcore._throttle import BUDGET_SECONDS, delay_after
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = [
    "activate",
    "charge",
    "consume_recovery_hash",
    "mark_used",
    "resync",
    "set_recovery_hashes",
    "set_secret",
    "unlock",
]

_ACTIVE = Status.ACTIVE
# Builds a record from a tuple of all its fields, in order, without NamedTuple's keyword path.
_new = UserRecord._make


def charge(
    record: UserRecord | None, *, status: Status, now: float, limits: Limits
) -> tuple[UserRecord | None, Attempt]:
    """Charge one attempt: the record to write (``None``: no write) and the attempt's outcome."""
    if record is None:
        return None, Attempt(None, False)
    # Unpacked and rebuilt positionally: this runs on every verify, and NamedTuple._replace
    # costs as much as the rest of the rule.
    (user_id, status_, secret, generation, algorithm, digits, period, last_step, drift,
     failures, last_failure_at, locked_at, log, hashes) = record  # fmt: skip
    if status_ is not status or locked_at is not None:
        return None, Attempt(record, False)
    cutoff = now - BUDGET_SECONDS
    recent = log if not log or min(log) > cutoff else tuple(t for t in log if t > cutoff)
    lockout = limits.lockout
    if failures >= lockout or len(recent) >= lockout:
        # The limit is reached: this attempt is refused and the lock is written, so every
        # service on the store sees it whatever its own policy.
        locked = record._replace(locked_at=now, failure_log=recent)
        return locked, Attempt(locked, False)
    if failures:
        delay = delay_after(failures, free=limits.free, base=limits.base, cap=limits.cap)
        # Within the free failures there is no wait, whatever the clock; past them a clock
        # that stepped back before the last failure only makes the wait longer.
        if delay and last_failure_at is not None and now < last_failure_at + delay:
            return None, Attempt(record, False)
    charged = _new(
        (user_id, status_, secret, generation, algorithm, digits, period, last_step, drift,
         failures + 1, now, locked_at, (*recent, now), hashes)
    )  # fmt: skip
    return charged, Attempt(charged, True)


def _refund(log: tuple[float, ...], charged_at: float) -> tuple[float, ...]:
    """The failure log without one entry of ``charged_at`` (a success takes back its charge)."""
    if not log or charged_at not in log:
        return log
    if log[-1] == charged_at:  # the usual case: this attempt was the latest charged
        return log[:-1]
    entries = list(log)
    entries.remove(charged_at)
    return tuple(entries)


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
    (user_id, status, secret, generation_, algorithm, digits, period, last, _drift,
     failures, last_failure_at, locked_at, log, hashes) = record  # fmt: skip
    if generation_ != generation or status is not _ACTIVE:
        return None
    if last is None or last < step:
        failures = 0
    elif allow_equal and last == step:
        # A repeat (API-header mode) takes back its own charge and nothing more: it must not
        # end an attacker's run of failures, or one sniffed header would reset the throttle.
        failures = failures - 1 if failures > 0 else 0
    else:
        return None
    return _new(
        (user_id, status, secret, generation, algorithm, digits, period, step, drift,
         failures, last_failure_at, locked_at, _refund(log, charged_at), hashes)
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
        failures=0,
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
        failures=0,
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
        failures=0,
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
    """Clear the consecutive failures, the failure log and the lock."""
    if record is None:
        return None
    return record._replace(failures=0, last_failure_at=None, locked_at=None, failure_log=())
