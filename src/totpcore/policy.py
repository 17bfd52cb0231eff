"""Policy: every knob of the two-factor service, validated once, with safe defaults.

The defaults are what the security notes justify: SHA1, 6 digits and 30 s (what every app
supports), a ±1 step window, 5 free failures and then a delay doubling from 1 s up to 15
minutes, a lock after 100 consecutive failures (NIST SP 800-63B §5.2.2), drift learned up to
12 hours, 10 recovery codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from totpcore._checks import check_algorithm, check_digits, check_int, check_period, check_range
from totpcore._throttle import delay_after
from totpcore.errors import InvalidParameterError
from totpcore.otp import MAX_WINDOW

__all__ = ["MAX_LOCKOUT_FAILURES", "Policy", "delay_after"]

#: NIST SP 800-63B §5.2.2: a verifier SHALL limit consecutive failed attempts to no more than 100.
MAX_LOCKOUT_FAILURES = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How :class:`~totpcore.TwoFactor` provisions, verifies and throttles.

    Attributes:
        digits: Code length for new enrolments, 6 to 8. Enrolled users keep their own
            ``digits``, ``algorithm`` and ``period``: changing them here affects new
            enrolments only.
        algorithm: Hash for new enrolments: ``"SHA1"`` (default; every app), ``"SHA256"`` or
            ``"SHA512"``.
        period: Time step in seconds for new enrolments.
        secret_bits: Size of new secrets, 128 to 4096, a multiple of 8.
        window: Steps accepted either side of the user's expected step, 0 to
            :data:`~totpcore.MAX_WINDOW`.
        learn_drift: Move each user's expected step towards the step their codes match, so a
            phone whose clock is off keeps working inside the same small window.
        max_drift: Largest clock error, in seconds, that drift learning and :meth:`resync` may
            compensate (default 12 hours); ``resync`` searches this far either side.
        free_failures: Consecutive failures allowed without any delay (typos happen).
        base_delay: Seconds to wait after the first failure past the free ones; doubles with
            each further failure. From 0.001 to 86,400.
        max_delay: Cap on that delay, in seconds, from ``base_delay`` to 86,400.
        lockout_failures: Wrong codes after which the next attempt locks the user until an
            admin unlocks or resets them: at most this many consecutive failures, and at most
            this many charged attempts in any rolling 24 hours whatever successes interleave;
            at most 100 (NIST SP 800-63B §5.2.2).
        recovery_codes: How many recovery codes a new set holds.
        recovery_iterations: PBKDF2-HMAC-SHA256 iterations for hashing new recovery codes
            (default 4,000: about 1.4 ms per attempt here; sized for 60-bit random codes, see
            the security notes). Hashes made with other counts keep working.

    Raises:
        InvalidParameterError: a value is out of range or the values contradict each other.
        TypeError: a value has the wrong type.
    """

    digits: int = 6
    algorithm: str = "SHA1"
    period: int = 30
    secret_bits: int = 160
    window: int = 1
    learn_drift: bool = True
    max_drift: int = 12 * 3600
    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 15 * 60.0
    lockout_failures: int = MAX_LOCKOUT_FAILURES
    recovery_codes: int = 10
    recovery_iterations: int = 4_000

    def __post_init__(self) -> None:
        check_digits(self.digits)
        object.__setattr__(self, "algorithm", check_algorithm(self.algorithm))
        check_period(self.period)
        bits = check_int(self.secret_bits, "secret_bits")
        if bits < 128 or bits > 4096 or bits % 8:
            raise InvalidParameterError("secret_bits must be a multiple of 8 from 128 to 4096")
        check_range(self.window, "window", 0, MAX_WINDOW)
        if not isinstance(self.learn_drift, bool):
            raise TypeError("learn_drift must be a bool")
        check_range(self.max_drift, "max_drift", 0, 7 * 24 * 3600)
        check_range(self.lockout_failures, "lockout_failures", 1, MAX_LOCKOUT_FAILURES)
        check_range(self.free_failures, "free_failures", 0, self.lockout_failures)
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number of seconds")
            # From a millisecond: the doubling stops at 2**40 times base_delay (the stores cap
            # the exponent there), which a millisecond takes past the largest max_delay.
            if not 0.001 <= value <= 86400:
                raise InvalidParameterError(f"{name} must be from 0.001 to 86400 seconds")
        if self.max_delay < self.base_delay:
            raise InvalidParameterError("max_delay must not be smaller than base_delay")
        check_range(self.recovery_codes, "recovery_codes", 1, 100)
        check_range(self.recovery_iterations, "recovery_iterations", 1, 10_000_000)

    @property
    def max_drift_steps(self) -> int:
        """``max_drift`` in whole time steps."""
        return self.max_drift // self.period
