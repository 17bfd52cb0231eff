"""Every verdict the service gives, and the reasoning behind each refusal.

This is the only place a :class:`~totpcore.Verdict` is built: the shells pass on what the core
decided, so a rule about what to answer exists once.
"""

from __future__ import annotations

from totpcore._throttle import delay_after
from totpcore.stores.protocol import Limits, Status, UserRecord
from totpcore.verdict import Reason, Verdict, describe_drift

__all__ = [
    "INVALID",
    "MALFORMED",
    "NOT_ENABLED",
    "NO_PAIR",
    "RECOVERY_ACCEPTED",
    "RECOVERY_INVALID",
    "RECOVERY_USED",
    "REPLAYED",
    "RESYNC_BEHIND_MARK",
    "RESYNC_LOST",
    "SETUP_LOST",
    "SETUP_REQUIRED",
    "Accepted",
    "malformed",
    "refusal",
]

INVALID = Verdict(Reason.INVALID, detail="no step in the window produces this code")
REPLAYED = Verdict(Reason.REPLAYED, detail="this code's time step was already used")
MALFORMED = Verdict(Reason.MALFORMED, detail="the code is not a well-formed code")
NOT_ENABLED = Verdict(Reason.NOT_ENABLED, detail="two-factor is not enabled for this user")
SETUP_REQUIRED = Verdict(Reason.SETUP_REQUIRED, detail="the user has not finished setup")
NO_PAIR = Verdict(Reason.INVALID, detail="no two consecutive steps produce these codes")
RESYNC_BEHIND_MARK = Verdict(
    Reason.REPLAYED, detail="these codes are not above the last accepted step"
)
RESYNC_LOST = Verdict(Reason.REPLAYED, detail="the record changed during the resync")
SETUP_LOST = Verdict(Reason.REPLAYED, detail="setup was completed or reset concurrently")
RECOVERY_INVALID = Verdict(Reason.INVALID, detail="not one of the user's unused recovery codes")
RECOVERY_USED = Verdict(Reason.REPLAYED, detail="this recovery code was already used")
RECOVERY_ACCEPTED = Verdict(Reason.ACCEPTED, detail="recovery code accepted and used up")


def malformed(record: UserRecord | None, wanted: Status = Status.ACTIVE) -> Verdict:
    """Answer a malformed code (never charged): MALFORMED, unless the user cannot try at all."""
    if record is None:
        return NOT_ENABLED
    if record.status is not wanted:
        return SETUP_REQUIRED if record.status is Status.SETUP_PENDING else NOT_ENABLED
    return MALFORMED


def refusal(record: UserRecord | None, now: float, wanted: Status, limits: Limits) -> Verdict:
    """Explain why the store did not allow an attempt."""
    if record is None:
        return NOT_ENABLED
    if record.status is not wanted:
        if record.status is Status.SETUP_PENDING:
            return SETUP_REQUIRED
        return Verdict(Reason.NOT_ENABLED, detail=f"the user is {record.status.value}")
    if record.locked_at is not None:
        return Verdict(
            Reason.LOCKED,
            detail=f"locked after {record.failures} consecutive failures "
            f"({len(record.failure_log)} in 24 h); an admin must unlock",
        )
    delay = delay_after(record.failures, free=limits.free, base=limits.base, cap=limits.cap)
    # Explicit None test: 0.0 is a valid time (a clock at the epoch), not "never".
    since = 0.0 if record.last_failure_at is None else now - record.last_failure_at
    retry_after = max(delay - since, 0.001)
    return Verdict(
        Reason.THROTTLED,
        retry_after=retry_after,
        detail=f"{record.failures} consecutive failures; next attempt in {retry_after:.1f} s",
    )


class Accepted:
    """ACCEPTED verdicts, one shared instance per (drift, period).

    Verdicts are immutable, and building one costs more than a store round trip in memory.
    The number of instances is bounded by the drift limit.
    """

    __slots__ = ("_verdicts",)

    def __init__(self) -> None:
        self._verdicts: dict[tuple[int, int], Verdict] = {}

    def __call__(self, drift: int, period: int) -> Verdict:
        """The ACCEPTED verdict for a device ``drift`` steps of ``period`` seconds off."""
        verdict = self._verdicts.get((drift, period))
        if verdict is None:
            verdict = Verdict(
                Reason.ACCEPTED,
                drift=drift,
                detail=f"code accepted; {describe_drift(drift, period)}",
            )
            self._verdicts[drift, period] = verdict
        return verdict
