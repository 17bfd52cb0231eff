"""The throttle's arithmetic, shared by the policy, the stores and the service.

Kept apart from the OTP engine so that loading a store never loads HMAC code.
"""

from __future__ import annotations

__all__ = ["BUDGET_SECONDS", "delay_after"]

#: The rolling period of the guessing budget: at most ``lockout`` wrong codes per user in any
#: 24 hours, whatever successes interleave.
BUDGET_SECONDS = 86_400.0


def delay_after(failures: int, *, free: int, base: float, cap: float) -> float:
    """Seconds a user must wait after ``failures`` consecutive failures before trying again.

    Nothing while fewer than ``free`` failures have happened; then ``base`` after the first
    failure past the free ones, doubling with each further failure, never more than ``cap``.
    With ``free=0`` the first wait (after the first failure) is ``base`` as well: no failure
    has happened before the first attempt, so there is nothing to wait for.
    """
    first_delayed = free if free > 0 else 1
    if failures < first_delayed:
        return 0.0
    # The exponent is capped so the power stays small: Policy keeps base_delay at 1 ms or more,
    # and 0.001 * 2**40 s is far past the largest allowed cap (a day).
    return float(min(base * 2 ** min(failures - first_delayed, 40), cap))
