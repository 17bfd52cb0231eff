"""Verdicts: what a verification decided, for the host app, its users and its support staff."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Reason", "Verdict", "describe_drift"]


class Reason(enum.Enum):
    """Why a code was accepted or refused."""

    ACCEPTED = "accepted"
    #: Well formed, but no step in the window produces it.
    INVALID = "invalid"
    #: Not a code at all (wrong length, letters, ...); not charged as an attempt.
    MALFORMED = "malformed"
    #: Right code, but its step was already used (RFC 6238 §5.2).
    REPLAYED = "replayed"
    #: Too many recent failures; try again after ``retry_after`` seconds. Not evaluated.
    THROTTLED = "throttled"
    #: Too many consecutive failures; only an admin unlock or reset lifts it. Not evaluated.
    LOCKED = "locked"
    #: Two-factor is enabled but the user has not finished setup.
    SETUP_REQUIRED = "setup_required"
    #: The user has no second factor.
    NOT_ENABLED = "not_enabled"


# What an attacker-facing page may say. INVALID, REPLAYED and MALFORMED read alike on purpose:
# telling a replayed code apart would confirm to an eavesdropper that the code was right.
_MESSAGES = {
    Reason.ACCEPTED: "Code accepted.",
    Reason.INVALID: "That code is not valid.",
    Reason.MALFORMED: "That code is not valid.",
    Reason.REPLAYED: "That code is not valid.",
    Reason.THROTTLED: "Too many attempts. Please wait and try again.",
    Reason.LOCKED: "Too many attempts. Contact your administrator.",
    Reason.SETUP_REQUIRED: "Two-factor setup is required.",
    Reason.NOT_ENABLED: "Two-factor authentication is not enabled.",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a check; truthy only when the code was accepted.

    Attributes:
        reason: Why, as a :class:`Reason`.
        retry_after: Seconds until the next attempt is allowed, when ``THROTTLED``.
        drift: The device's clock error in steps (negative: slow), when accepted.
        detail: A sentence for logs and support staff, e.g. "the device clock is about 2 hours
            slow". Never shown to the person logging in: use :attr:`message` for that.
    """

    reason: Reason
    retry_after: float | None = None
    drift: int | None = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.reason is Reason.ACCEPTED

    @property
    def message(self) -> str:
        """What the login page may show; the same for wrong, replayed and malformed codes.

        A ``THROTTLED`` verdict says how long to wait: ``retry_after`` rounded up to whole
        seconds, at least one ("Too many attempts. Try again in 3 seconds.").
        """
        if self.reason is Reason.THROTTLED:
            return _throttled_message(self.retry_after)
        return _MESSAGES[self.reason]


def _throttled_message(retry_after: float | None) -> str:
    """The THROTTLED message: the wait in whole seconds, rounded up (an early retry fails)."""
    if retry_after is None or not math.isfinite(retry_after):
        return _MESSAGES[Reason.THROTTLED]
    seconds = max(1, math.ceil(retry_after))
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many attempts. Try again in {seconds} {unit}."


def describe_drift(steps: int, period: int) -> str:
    """Describe a clock error of ``steps`` time steps in words a support person can read."""
    seconds = abs(steps) * period
    if seconds < period or steps == 0:
        return "the device clock is right"
    direction = "slow" if steps < 0 else "fast"
    if seconds < 90:
        amount = f"{seconds} seconds"
    elif seconds < 90 * 60:
        amount = f"{round(seconds / 60)} minutes"
    else:
        hours = round(seconds / 3600)
        amount = f"{hours} hour" + ("s" if hours != 1 else "")
    return f"the device clock is about {amount} {direction}"
