"""The decision core: every policy rule of the service, once, with no I/O.

Each service call is a short conversation with the store. The core speaks in explicit two-phase
calls: a first method validates the input and says what to ask the store (a plan, a small named
tuple), and a second turns the store's answer into a :class:`~totpcore.Verdict` or an error.
:class:`~totpcore.TwoFactor` and :class:`~totpcore.AsyncTwoFactor` only carry the plans to the
store and back, so the two shells cannot drift apart on a rule.

Ordering of a check, and why:

1. malformed codes are answered without charging an attempt (a typo in the format teaches an
   attacker nothing, and users should not be throttled for pasting a space);
2. the store charges the attempt *before* the code is evaluated, atomically, so that parallel
   guesses cannot all slip in before the first failure is recorded;
3. the code is evaluated over the whole window around the user's learned drift;
4. the store marks the step used with a compare-and-set, which takes back the charge only if
   this request won; a replay loses and stays charged.
"""

from __future__ import annotations

import functools
import secrets as _secrets
import time
from collections.abc import Callable
from typing import NamedTuple

from totpcore._checks import MAX_USER_ID_LENGTH, check_user_id
from totpcore._core import verdicts
from totpcore._core.keys import DEFAULT_KEY_CACHE_SIZE, Keys
from totpcore._engine import Keyed
from totpcore.errors import InvalidSecretError, InvalidTimeError, StoreError, UserStateError
from totpcore.otp import TOTP
from totpcore.policy import MAX_LOCKOUT_FAILURES, Policy
from totpcore.recovery import (
    find_recovery_hash,
    generate_recovery_codes,
    hash_recovery_codes,
    normalize_recovery_code,
)
from totpcore.secret import MIN_KEY_BYTES, decode_secret, encode_secret
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord
from totpcore.uri import OTPAuthURI, build_uri
from totpcore.verdict import Verdict

__all__ = ["MAX_CODE_LENGTH", "Activate", "Check", "Consume", "Core", "MarkUsed", "Resync"]

#: Longest code string looked at, in characters; anything longer is MALFORMED before any work
#: (an 8-digit code grouped with spaces needs far less).
MAX_CODE_LENGTH = 64
# Clock values from 0 up to 2**40 seconds (about the year 36,800): steps stay far inside the
# 8-byte HOTP counter and the stores' 64-bit integers, and a float second still has a
# resolution of a quarter of a millisecond, finer than any throttle delay or the stamps'
# 1 ms nudge (totpcore.stores._rules), so no wait can round away.
_LATEST_TIME = float(2**40)


#: Seconds between re-reads of the store-wide settings (strictest lockout, legacy flag).
REFRESH_SECONDS = 60.0


def _parse_lockout(value: str | None) -> int | None:
    """A stored lockout, or ``None`` when absent or not a usable number."""
    if value is None or not value.isdigit():
        return None
    number = int(value)
    return number if 1 <= number <= MAX_LOCKOUT_FAILURES else None


class Check(NamedTuple):
    """A well-formed code, ready to be charged: its value, its length, and when it came."""

    value: int
    digits: int
    now: float


class MarkUsed(NamedTuple):
    """Ask the store to move the replay mark (login and API-header checks)."""

    generation: int
    step: int
    drift: int
    allow_equal: bool
    charged_at: float
    period: int


class Activate(NamedTuple):
    """Ask the store to complete setup with the confirming step used."""

    generation: int
    step: int
    drift: int
    charged_at: float
    period: int


class Resync(NamedTuple):
    """Ask the store to move the replay mark to a resynchronised pair."""

    generation: int
    step: int
    drift: int
    charged_at: float
    period: int


class Consume(NamedTuple):
    """Ask the store to use up one recovery code."""

    generation: int
    code_hash: str
    charged_at: float


# Built with tuple.__new__ bound in C: NamedTuple's generated constructor is a Python call, and
# these are made on every verify.
_new_check = functools.partial(tuple.__new__, Check)
_new_mark = functools.partial(tuple.__new__, MarkUsed)


class Core:
    """The service's decisions for one application: policy, clock and cipher, no store.

    Args:
        issuer: The service name authenticator apps display (no ``:``).
        policy: Windows, throttling, drift and the parameters of new enrolments.
        clock: Returns the current Unix time in seconds.
        cipher: Encrypts secrets at rest, or ``None``.
        key_cache_size: How many users' decrypted, precomputed keys to keep.
    """

    def __init__(
        self,
        *,
        issuer: str,
        policy: Policy,
        clock: Callable[[], float],
        cipher: object,
        key_cache_size: int = DEFAULT_KEY_CACHE_SIZE,
    ) -> None:
        if not isinstance(policy, Policy):
            raise TypeError("policy must be a totpcore Policy")
        if not callable(clock):
            raise TypeError("clock must be a callable returning Unix seconds")
        # Validates the issuer once, with the same rules URIs are built with.
        OTPAuthURI(kind="totp", account="check", issuer=issuer, key=b"\0")
        self.issuer = issuer
        self.policy = policy
        self.keys = Keys(cipher, cache_size=key_cache_size)  # type: ignore[arg-type]  # checked
        self._keyed = self.keys.keyed
        self.limits = Limits(
            free=policy.free_failures,
            base=policy.base_delay,
            cap=policy.max_delay,
            lockout=policy.lockout_failures,
        )
        self._clock = clock
        self._window = policy.window
        self._learn = policy.learn_drift
        self._max_drift = policy.max_drift
        self.accepted = verdicts.Accepted()
        #: When (``time.monotonic``) the shells should re-read the store's settings; 0 until
        #: the first operation (see :meth:`adopt_settings`).
        self.settings_due = 0.0

    # --- inputs --------------------------------------------------------------------------

    check_user_id = staticmethod(check_user_id)

    def now(self) -> float:
        """Read the injected clock, refusing values no step can be computed from."""
        return self._checked_time(self._clock())

    @staticmethod
    def _checked_time(now: object) -> float:
        """The clock's reading as a float, refusing values no step can be computed from."""
        if type(now) is not float:  # the usual case (time.time) skips the type checks
            if not isinstance(now, int) or isinstance(now, bool):
                raise TypeError("clock must return Unix seconds as int or float")
            # The plain number (an int subclass's overrides ignored), range-checked before
            # float() so that a huge one is an invalid time, not an OverflowError.
            seconds = int.__index__(now)
            if not 0 <= seconds < _LATEST_TIME:
                raise InvalidTimeError(
                    "clock returned a time that is negative, not finite, or past the year 36,000"
                )
            now = float(seconds)
        if not 0 <= now < _LATEST_TIME:  # also false for NaN and infinity
            raise InvalidTimeError(
                "clock returned a time that is negative, not finite, or past the year 36,000"
            )
        return now

    def check(self, user_id: str, code: str) -> Check | None:
        """Validate a login check; ``None`` when the code is malformed (answer it uncharged)."""
        # The common case (a short ASCII id, six digits) is checked inline: this runs on every
        # verify. Anything else takes the full checks, which raise or say why.
        if not (
            type(user_id) is str
            and 0 < len(user_id) <= MAX_USER_ID_LENGTH
            and user_id.isascii()
            and "\0" not in user_id
        ):
            check_user_id(user_id)
        if type(code) is str and len(code) == 6 and code.isascii() and code.isdigit():
            # now(), inlined for the usual clock (time.time, a float in range).
            now = self._clock()
            if type(now) is float and 0 <= now < _LATEST_TIME:
                return _new_check((int(code), 6, now))
            return _new_check((int(code), 6, self._checked_time(now)))
        parsed = parse_code(code)
        if parsed is None:
            return None
        return _new_check((parsed[0], parsed[1], self.now()))

    # --- store-wide settings ------------------------------------------------------------

    def lockout_proposal(self, known: str | None) -> str | None:
        """The lockout to record on the store, when this policy is stricter than what it has.

        Every service on a store honours the strictest ``lockout_failures`` among them, so an
        API gateway with a lax policy cannot give an attacker more guesses than the app allows.
        """
        current = _parse_lockout(known)
        own = self.policy.lockout_failures
        return str(own) if current is None or own < current else None

    def settings_stale(self) -> bool:
        """Whether the store's settings are due to be read again (real time, not the clock).

        Real elapsed time, so that neither an injected clock nor a clock step can postpone it.
        """
        return time.monotonic() >= self.settings_due

    def adopt_settings(self, *, lockout: str | None, legacy: str | None, fresh: bool) -> None:
        """Apply the store's settings; the shells re-read them every REFRESH_SECONDS.

        The strictest lockout on the store becomes this service's; a legacy-ciphertext flag
        cleared by a key rotation in another process is followed within the refresh period.
        """
        stored = _parse_lockout(lockout)
        own = self.policy.lockout_failures
        effective = own if stored is None else min(own, stored)
        if effective != self.limits.lockout:
            self.limits = Limits(
                free=min(self.policy.free_failures, effective),
                base=self.limits.base,
                cap=self.limits.cap,
                lockout=effective,
            )
        self.keys.refresh_legacy(legacy)
        # Read at construction: the first operation reads again (it may come much later).
        self.settings_due = time.monotonic() + REFRESH_SECONDS if fresh else 0.0

    # --- lifecycle -----------------------------------------------------------------------

    def new_record(self, user_id: str) -> UserRecord:
        """A fresh SETUP_PENDING record with a new secret and generation, from the policy."""
        policy = self.policy
        key = _secrets.token_bytes(policy.secret_bits // 8)
        generation = _secrets.randbits(62)
        return UserRecord(
            user_id=user_id,
            status=Status.SETUP_PENDING,
            secret=self.keys.seal(key, user_id, generation),
            generation=generation,
            algorithm=policy.algorithm,
            digits=policy.digits,
            period=policy.period,
        )

    def imported_record(
        self,
        user_id: str,
        key: bytes | str,
        *,
        algorithm: str,
        digits: int,
        period: int,
        allow_short_key: bool,
    ) -> UserRecord:
        """An ACTIVE record from a secret the user's phone already has (see import_secret)."""
        check_user_id(user_id)
        raw = decode_secret(key) if isinstance(key, str) else key
        if not isinstance(allow_short_key, bool):
            raise TypeError("allow_short_key must be a bool")
        if not allow_short_key and isinstance(raw, bytes) and len(raw) < MIN_KEY_BYTES:
            raise InvalidSecretError(
                f"key is {len(raw) * 8} bits; RFC 4226 requires at least {MIN_KEY_BYTES * 8} "
                "(pass allow_short_key=True to import a legacy shorter key)"
            )
        # The engine object validates key and parameters with the engine's own rules.
        otp = TOTP(raw, algorithm=algorithm, digits=digits, period=period, enforce_key_length=False)
        generation = _secrets.randbits(62)
        return UserRecord(
            user_id=user_id,
            status=Status.ACTIVE,
            secret=self.keys.seal(otp.key, user_id, generation),
            generation=generation,
            algorithm=otp.algorithm,
            digits=otp.digits,
            period=otp.period,
            # The old system may have accepted any code up to now: none of them, nor a pair of
            # them through resync, may work here. The first code must come from a later step,
            # and no API-header repeat applies until a code is accepted here.
            last_step=int(self.now()) // otp.period,
        )

    @staticmethod
    def status_of(record: UserRecord | None) -> Status:
        """The user's lifecycle status; no record is DISABLED."""
        return Status.DISABLED if record is None else record.status

    @staticmethod
    def require(record: UserRecord | None, status: Status, action: str) -> UserRecord:
        """The record, or UserStateError unless it is in ``status``."""
        current = Status.DISABLED if record is None else record.status
        if record is None or current is not status:
            raise UserStateError(
                f"{action} needs a user whose two-factor status is {status.value}, "
                f"but it is {current.value}"
            )
        return record

    @staticmethod
    def written(done: bool, action: str) -> None:
        """Raise UserStateError when a conditional admin write lost to a concurrent change."""
        if not done:
            raise UserStateError(f"the user's record changed during {action}; try again")

    @staticmethod
    def inserted(done: bool) -> None:
        """Raise UserStateError when an import found the user already enrolled."""
        if not done:
            raise UserStateError("the user already has two-factor; disable it before importing")

    @staticmethod
    def found(done: bool) -> None:
        """Raise UserStateError when an admin action found no record."""
        if not done:
            raise UserStateError("two-factor is not enabled for this user")

    def provisioning(self, record: UserRecord, account_name: str | None) -> tuple[str, str, str]:
        """What the setup screen shows: ``(account, secret, uri)`` with the user's parameters."""
        account = record.user_id if account_name is None else account_name
        key = self.keyed_of(record).key
        uri = build_uri(
            OTPAuthURI(
                kind="totp",
                account=account,
                issuer=self.issuer,
                key=key,
                algorithm=record.algorithm,
                digits=record.digits,
                period=record.period,
            )
        )
        return account, encode_secret(key), uri

    def keyed_of(self, record: UserRecord) -> Keyed:
        """The user's HMAC state, decrypted and cached."""
        return self.keys.keyed_of(record)

    # --- login ---------------------------------------------------------------------------

    def evaluate(self, check: Check, attempt: Attempt, allow_equal: bool) -> Verdict | MarkUsed:
        """Evaluate a charged login code: a refusal, or the compare-and-set to ask for."""
        if type(attempt) is not Attempt:
            raise _bad_answer(attempt)
        record = attempt.record
        if attempt.allowed is not True or record is None:  # a truthy non-bool fails closed
            return verdicts.refusal(record, check.now, Status.ACTIVE, self.limits)
        if check.digits != record.digits:
            return verdicts.INVALID  # well formed, but not this user's length: a wrong code
        period = record.period
        current = int(check[2]) // period
        window = self._window
        drift = record.drift
        # Centre the window on where this user's device is known to be. The cache is called
        # directly (not through keyed_of), and fields are read by position: the hot path.
        keyed = self._keyed(record[0], record[2], record[3], record[4], record[5])
        step = keyed.around(check[0], current + drift, window, window)
        if step < 0:
            return verdicts.INVALID
        # A repeat (API-header mode) tells nothing new about the device's clock; learning from
        # it would let one code walk the window backwards and never expire. A phone in step
        # with no drift (the usual case) has nothing to learn either.
        if step != record.last_step and (step != current or drift):
            drift = self.learned_drift(step - current, drift, period)
        stamp = record.last_failure_at
        return _new_mark(
            (record.generation, step, drift, allow_equal, check[2] if stamp is None else stamp,
             period)
        )  # fmt: skip

    def marked(self, plan: MarkUsed, won: bool) -> Verdict:
        """The verdict once the store answered the compare-and-set."""
        # ``is True``: a third-party store answering something merely truthy fails closed.
        return self.accepted(plan.drift, plan.period) if won is True else verdicts.REPLAYED

    def learned_drift(self, observed: int, previous: int, period: int) -> int:
        """The drift to store after a match ``observed`` steps from the true current step.

        Clamped to ``max_drift``: a phone that keeps losing time must not walk the window
        further than the policy allows.
        """
        if not self._learn:
            return previous
        reach = self._max_drift // period
        return -reach if observed < -reach else reach if observed > reach else observed

    malformed = staticmethod(verdicts.malformed)

    # --- setup ---------------------------------------------------------------------------

    def evaluate_setup(self, check: Check, attempt: Attempt) -> Verdict | Activate:
        """Evaluate a charged confirmation code for a pending user."""
        if type(attempt) is not Attempt:
            raise _bad_answer(attempt)
        record = attempt.record
        if attempt.allowed is not True or record is None:  # a truthy non-bool fails closed
            return verdicts.refusal(record, check.now, Status.SETUP_PENDING, self.limits)
        if check.digits != record.digits:
            return verdicts.INVALID
        window = self._window
        current = int(check.now) // record.period
        step = self.keyed_of(record).around(check.value, current, window, window)
        if step < 0:
            return verdicts.INVALID
        drift = self.learned_drift(step - current, 0, record.period)
        return Activate(record.generation, step, drift, _stamp(record, check), record.period)

    def activated(self, plan: Activate, won: bool) -> Verdict:
        """The verdict once the store answered the activation."""
        return self.accepted(plan.drift, plan.period) if won is True else verdicts.SETUP_LOST

    # --- resync --------------------------------------------------------------------------

    def check_pair(self, user_id: str, code1: str, code2: str) -> tuple[Check, Check] | None:
        """Validate a resync request; ``None`` when either code is malformed."""
        check_user_id(user_id)
        first = parse_code(code1)
        second = parse_code(code2)
        if first is None or second is None:
            return None
        now = self.now()
        return Check(first[0], first[1], now), Check(second[0], second[1], now)

    def plan_resync(self, pair: tuple[Check, Check], attempt: Attempt) -> Verdict | Resync:
        """Find the pair within ``max_drift`` nearest to now; it must lie above the mark."""
        first, second = pair
        if type(attempt) is not Attempt:
            raise _bad_answer(attempt)
        record = attempt.record
        if attempt.allowed is not True or record is None:  # a truthy non-bool fails closed
            return verdicts.refusal(record, first.now, Status.ACTIVE, self.limits)
        if first.digits != record.digits or second.digits != record.digits:
            return verdicts.NO_PAIR
        current = int(first.now) // record.period
        best = nearest_pair(
            self.keyed_of(record),
            first.value,
            second.value,
            current,
            self.policy.max_drift // record.period,
        )
        if best is None:
            return verdicts.NO_PAIR
        # A step once accepted is never accepted again by any path: both codes must be new.
        if record.last_step is not None and best - 1 <= record.last_step:
            return verdicts.RESYNC_BEHIND_MARK
        return Resync(record.generation, best, best - current, _stamp(record, first), record.period)

    def resynced(self, plan: Resync, won: bool) -> Verdict:
        """The verdict once the store answered the resync."""
        return self.accepted(plan.drift, plan.period) if won is True else verdicts.RESYNC_LOST

    # --- recovery codes ------------------------------------------------------------------

    def new_recovery_set(self) -> tuple[list[str], tuple[str, ...]]:
        """A new set of codes to show once, and the hashes to store."""
        codes = generate_recovery_codes(self.policy.recovery_codes)
        return codes, hash_recovery_codes(codes, iterations=self.policy.recovery_iterations)

    def check_recovery(self, user_id: str, code: str) -> float | None:
        """Validate a recovery code attempt: its time, or ``None`` when malformed."""
        check_user_id(user_id)
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if len(code) > MAX_CODE_LENGTH or normalize_recovery_code(code) is None:
            return None
        return self.now()

    def evaluate_recovery(self, code: str, now: float, attempt: Attempt) -> Verdict | Consume:
        """Evaluate a charged recovery code against the stored hashes."""
        if type(attempt) is not Attempt:
            raise _bad_answer(attempt)
        record = attempt.record
        if attempt.allowed is not True or record is None:  # a truthy non-bool fails closed
            return verdicts.refusal(record, now, Status.ACTIVE, self.limits)
        matched = find_recovery_hash(code, record.recovery_hashes)
        if matched is None:
            return verdicts.RECOVERY_INVALID
        stamp = now if record.last_failure_at is None else record.last_failure_at
        return Consume(record.generation, matched, stamp)

    @staticmethod
    def consumed(won: bool) -> Verdict:
        """The verdict once the store answered the consumption."""
        return verdicts.RECOVERY_ACCEPTED if won is True else verdicts.RECOVERY_USED


def _bad_answer(answer: object) -> StoreError:
    """A store that answered begin_attempt with something else fails closed."""
    return StoreError(f"the store answered an attempt with a {type(answer).__name__}")


def _stamp(record: UserRecord, check: Check) -> float:
    """The charge's own stamp, which the success names to take back exactly that charge."""
    return check.now if record.last_failure_at is None else record.last_failure_at


def parse_code(code: object) -> tuple[int, int] | None:
    """A code's value and number of digits, or ``None`` when it cannot be any user's code.

    The user's own length is checked once the record is read: 6 to 8 ASCII digits, optionally
    grouped with spaces, is well formed for somebody. Over-long strings are refused first.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if len(code) > MAX_CODE_LENGTH:
        return None
    if " " in code:
        code = code.replace(" ", "")
    # isascii() first: isdigit() alone also accepts full-width and other digits int() reads.
    if not 6 <= len(code) <= 8 or not code.isascii() or not code.isdigit():
        return None
    return int(code), len(code)


def nearest_pair(keyed: Keyed, first: int, second: int, current: int, reach: int) -> int | None:
    """The second step of the consecutive pair producing ``first, second`` nearest to now.

    Every pair within ``reach`` steps of ``current`` is compared (no early exit); on a tie the
    earlier pair wins, as for single codes.
    """
    start = max(current - reach, 0)
    values = keyed.values(start, current + reach + 1)
    best: int | None = None
    for index in range(len(values) - 1):
        if values[index] == first and values[index + 1] == second:
            step = start + index + 1
            if best is None or abs(step - current) < abs(best - current):
                best = step
    return best
