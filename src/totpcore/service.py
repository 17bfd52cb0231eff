"""TwoFactor: the enrolment lifecycle and every policy decision around a code.

The flow it serves: an admin enables a user (SETUP_PENDING); at next login the user scans the
secret and confirms a code (ACTIVE); every later login checks a code with replay protection,
throttling and drift; an admin can reset a lost phone or disable the factor; recovery codes let
a user in without the phone.

Ordering of a check, and why:

1. malformed codes are answered without charging an attempt (a typo in the format teaches an
   attacker nothing, and users should not be throttled for pasting a space);
2. the store charges the attempt *before* the code is evaluated, atomically, so that parallel
   guesses cannot all slip in before the first failure is recorded;
3. the code is evaluated over the whole window around the user's learned drift;
4. the store marks the step used with a compare-and-set, which clears the charge only if this
   request won; a replay loses the race and stays charged.
"""

from __future__ import annotations

import os
import secrets as _secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from totpcore.cipher import SecretCipher
from totpcore.errors import (
    CipherError,
    InvalidParameterError,
    InvalidTimeError,
    StoreError,
    TotpcoreError,
    UserStateError,
)
from totpcore.otp import TOTP, _code_value
from totpcore.policy import Policy, delay_after
from totpcore.recovery import (
    find_recovery_hash,
    generate_recovery_codes,
    hash_recovery_codes,
    normalize_recovery_code,
)
from totpcore.secret import encode_secret
from totpcore.stores.protocol import Limits, Status, Store, UserRecord
from totpcore.uri import OTPAuthURI
from totpcore.verdict import Reason, Verdict, describe_drift

__all__ = ["MAX_USER_ID_LENGTH", "Provisioning", "TwoFactor"]

_INVALID = Verdict(Reason.INVALID, detail="no step in the window produces this code")
_REPLAYED = Verdict(Reason.REPLAYED, detail="this code's time step was already used")
_MALFORMED = Verdict(Reason.MALFORMED, detail="the code is not a well-formed code")
_NOT_ENABLED = Verdict(Reason.NOT_ENABLED, detail="two-factor is not enabled for this user")
_SETUP_REQUIRED = Verdict(Reason.SETUP_REQUIRED, detail="the user has not finished setup")

# Clock values from 0 up to 2**62 seconds: steps (and step + drift + window) then stay far
# inside the 8-byte HOTP counter and the signed 64-bit integers stores keep.
_LATEST_TIME = float(2**62)

#: Longest accepted user id, in characters.
MAX_USER_ID_LENGTH = 256
_OTP_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Provisioning:
    """What the one-time setup screen shows: the secret as text and as an otpauth URI.

    Attributes:
        user_id: The user being set up.
        account: The account name the app will display.
        issuer: The service name the app will display.
        secret: The base32 secret, for manual entry (never shown in ``repr``).
        uri: The ``otpauth://`` URI to render as a QR code (never shown in ``repr``).
    """

    user_id: str
    account: str
    issuer: str
    secret: str = field(repr=False)
    uri: str = field(repr=False)

    def qr_svg(self, *, scale: int = 8) -> str:
        """The URI as an SVG QR code, to inline in the setup page (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_svg

        return qr_svg(self.uri, scale=scale)

    def qr_png(self, path: str | os.PathLike[str], *, scale: int = 8) -> None:
        """Write the URI as a PNG QR code to ``path`` (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_png

        qr_png(self.uri, path, scale=scale)

    def qr_terminal(self) -> str:
        """The URI as a QR code for a terminal (needs ``totpcore[qr]``)."""
        from totpcore.qr import qr_terminal

        return qr_terminal(self.uri)


class TwoFactor:
    """The two-factor service for one application.

    Args:
        store: Where records live; any :class:`~totpcore.Store`.
        issuer: The service name authenticator apps display (no ``:``).
        policy: Windows, throttling, drift and enrolment settings.
        clock: Returns the current Unix time in seconds; inject one in tests.
        cipher: Encrypts secrets before they reach the store; ``None`` stores them as is.

    Raises:
        TypeError: ``store``, ``policy``, ``clock`` or ``cipher`` is of the wrong kind.
        InvalidURIError: ``issuer`` cannot appear in an otpauth URI.

    Only :class:`~totpcore.TotpcoreError` subclasses escape its methods (and ``TypeError`` for
    arguments of the wrong type); store failures become :class:`~totpcore.StoreError` and are
    never an acceptance.
    """

    def __init__(
        self,
        store: Store,
        *,
        issuer: str,
        policy: Policy = Policy(),  # noqa: B008 - Policy is frozen, sharing it is safe
        clock: Callable[[], float] = time.time,
        cipher: SecretCipher | None = None,
    ) -> None:
        if not isinstance(store, Store):
            raise TypeError("store must implement the totpcore Store protocol")
        if not isinstance(policy, Policy):
            raise TypeError("policy must be a totpcore Policy")
        if not callable(clock):
            raise TypeError("clock must be a callable returning Unix seconds")
        if cipher is not None and not isinstance(cipher, SecretCipher):
            raise TypeError("cipher must implement the totpcore SecretCipher protocol")
        # Validates the issuer once, with the same rules URIs are built with.
        OTPAuthURI(kind="totp", account="check", issuer=issuer, key=b"\0")
        self.store = store
        self.issuer = issuer
        self.policy = policy
        self._clock = clock
        self._cipher = cipher
        self._limits = Limits(
            free=policy.free_failures,
            base=policy.base_delay,
            cap=policy.max_delay,
            lockout=policy.lockout_failures,
        )
        # Decrypting the secret and precomputing its HMAC pads costs more than the verify; keyed
        # by the stored (possibly encrypted) bytes, so a new secret can never hit an old entry.
        self._otp = lru_cache(maxsize=_OTP_CACHE_SIZE)(self._build_otp)
        # Verdicts are immutable, so accepted ones are shared per drift value (bounded by
        # max_drift): building one costs more than a store round trip in memory.
        self._accepted_verdicts: dict[int, Verdict] = {}

    def __repr__(self) -> str:
        return f"TwoFactor(store={self.store!r}, issuer={self.issuer!r}, policy={self.policy!r})"

    # --- admin ---------------------------------------------------------------------------

    def enable(self, user_id: str) -> Status:
        """Turn two-factor on: the user must set up at next login.

        A user who is already pending or active is left as is. Returns the resulting status.
        """
        _check_user_id(user_id)
        with _store_errors("enable"):
            record = self.store.get(user_id)
            if record is not None:
                return record.status
            self.store.insert(self._new_record(user_id))
            record = self.store.get(user_id)
        return Status.DISABLED if record is None else record.status

    def enable_many(self, user_ids: Iterable[str]) -> dict[str, Status]:
        """Enable several users; returns each one's resulting status.

        Every id is checked before any user is enabled, so a bad id changes nothing. Users are
        then enabled one at a time: if the store fails midway, those before the failure stay
        enabled (enabling again is harmless).
        """
        ids = list(user_ids)
        for user_id in ids:
            _check_user_id(user_id)
        return {user_id: self.enable(user_id) for user_id in ids}

    def status(self, user_id: str) -> Status:
        """Return DISABLED, SETUP_PENDING or ACTIVE."""
        _check_user_id(user_id)
        with _store_errors("status"):
            record = self.store.get(user_id)
        return Status.DISABLED if record is None else record.status

    def reset(self, user_id: str) -> None:
        """Replace an ACTIVE user's secret and send them back to setup.

        The old secret stops working at once, recovery codes are discarded, and any lock is
        lifted. Raises :class:`~totpcore.UserStateError` for a user who is not ACTIVE.
        """
        record = self._record_in(user_id, Status.ACTIVE, "reset")
        with _store_errors("reset"):
            replaced = self.store.replace(self._new_record(user_id), generation=record.generation)
        if not replaced:
            raise UserStateError("the user's record changed during the reset; try again")

    def disable(self, user_id: str) -> bool:
        """Remove the user's second factor; returns whether there was one."""
        _check_user_id(user_id)
        with _store_errors("disable"):
            return self.store.delete(user_id)

    def unlock(self, user_id: str) -> None:
        """Clear the user's failure count and lock (admin action)."""
        _check_user_id(user_id)
        with _store_errors("unlock"):
            found = self.store.unlock(user_id)
        if not found:
            raise UserStateError("two-factor is not enabled for this user")

    # --- setup ---------------------------------------------------------------------------

    def begin_setup(self, user_id: str, *, account_name: str | None = None) -> Provisioning:
        """Return the secret and URI for the setup screen (only while SETUP_PENDING).

        The same secret is returned every time until setup completes, so a user can scan it
        on several phones. ``account_name`` (default: the user id) is what the app displays.
        """
        record = self._record_in(user_id, Status.SETUP_PENDING, "begin_setup")
        account = user_id if account_name is None else account_name
        otp = self._otp(record.secret, user_id)
        return Provisioning(
            user_id=user_id,
            account=account,
            issuer=self.issuer,
            secret=encode_secret(otp.key),
            uri=otp.uri(account, issuer=self.issuer),
        )

    def complete_setup(self, user_id: str, code: str) -> Verdict:
        """Confirm setup with a code from the app: SETUP_PENDING -> ACTIVE when accepted."""
        self._record_in(user_id, Status.SETUP_PENDING, "complete_setup")
        wanted = _code_value(code, self.policy.digits)
        if wanted is None:
            return _MALFORMED
        now = self._now()
        with _store_errors("complete_setup"):
            record = self._charge(user_id, Status.SETUP_PENDING, now)
            if isinstance(record, Verdict):
                return record
            otp = self._otp(record.secret, user_id)
            window = self.policy.window
            match = otp._around(wanted, self._step(now), window, window)
            if match is None:
                return _INVALID
            drift = match.offset if self.policy.learn_drift else 0
            won = self.store.activate(
                user_id, generation=record.generation, step=match.counter, drift=drift
            )
        if not won:
            return Verdict(Reason.REPLAYED, detail="setup was completed or reset concurrently")
        return self._accepted(drift)

    # --- login ---------------------------------------------------------------------------

    def verify(self, user_id: str, code: str) -> Verdict:
        """Check a login code: replay-protected, throttled and drift-aware.

        A step is accepted at most once (RFC 6238 §5.2): a code whose step is at or below the
        last accepted step is REPLAYED.
        """
        return self._check(user_id, code, allow_equal=False)

    def verify_request(self, user_id: str, code: str) -> Verdict:
        """Check a code sent with an API request (the ``otp`` header).

        As :meth:`verify`, except that a repeat of the last accepted step is allowed while it
        is still inside the window, because a client sends the same code with every request
        of a 30-second step. An older step is never accepted.
        """
        return self._check(user_id, code, allow_equal=True)

    def _check(self, user_id: str, code: str, *, allow_equal: bool) -> Verdict:
        """The login check behind :meth:`verify` and :meth:`verify_request`.

        This is the hot path: store calls get plain try/except (free when nothing is raised)
        rather than the context manager the admin calls use, the step is computed once in
        integer seconds, and fixed verdicts are shared constants.
        """
        _check_user_id(user_id)
        wanted = _code_value(code, self.policy.digits)
        if wanted is None:
            return self._malformed(user_id)
        now = self._now()
        try:
            attempt = self.store.begin_attempt(
                user_id, status=Status.ACTIVE, now=now, limits=self._limits
            )
        except TotpcoreError:
            raise
        except Exception as error:
            raise _store_error("verify", error) from error
        record = attempt.record
        if not attempt.allowed or record is None:
            return self._refusal(record, now, Status.ACTIVE)
        otp = self._otp(record.secret, user_id)
        current = self._step(now)
        window = self.policy.window
        # Centre the window on where this user's device is known to be; the code was parsed
        # above, so the engine only scans.
        match = otp._around(wanted, current + record.drift, window, window)
        if match is None:
            return _INVALID
        if match.counter == record.last_step:
            # A repeat (API-header mode) tells nothing new about the device's clock; learning
            # from it would let one code walk the window backwards and never expire.
            drift = record.drift
        else:
            drift = self._learned_drift(match.counter - current, record.drift)
        try:
            won = self.store.mark_used(
                user_id,
                generation=record.generation,
                step=match.counter,
                drift=drift,
                allow_equal=allow_equal,
            )
        except TotpcoreError:
            raise
        except Exception as error:
            raise _store_error("verify", error) from error
        return self._accepted(drift) if won else _REPLAYED

    def resync(self, user_id: str, code1: str, code2: str) -> Verdict:
        """Resynchronise a device whose clock is far off, from two consecutive codes.

        Searches ``policy.max_drift`` either side of now for two consecutive steps producing
        ``code1`` then ``code2``. On success the user's drift is set to that offset, and the
        last used step moves to the second code's step, *even backwards*: a slow phone's codes
        belong to steps that may already lie behind the last accepted one. That is a deliberate
        trade-off: someone holding two consecutive codes that are older than the window could
        resynchronise to them, so offer resync only after the password check. Codes whose
        offset is within the window of the stored drift get no such leeway: those are merely
        old codes, and their steps must be new, as at login. Counts as an attempt for
        throttling.
        """
        _check_user_id(user_id)
        digits = self.policy.digits
        first_value = _code_value(code1, digits)
        second_value = _code_value(code2, digits)
        if first_value is None or second_value is None:
            return self._malformed(user_id)
        now = self._now()
        with _store_errors("resync"):
            record = self._charge(user_id, Status.ACTIVE, now)
            if isinstance(record, Verdict):
                return record
            otp = self._otp(record.secret, user_id)
            current = self._step(now)
            reach = self.policy.max_drift_steps
            first = max(current - reach, 0)
            values = otp._values(first, current + reach + 1)
            # Every pair is compared (no early exit); the one nearest to now wins.
            best: int | None = None
            for index in range(len(values) - 1):
                if values[index] == first_value and values[index + 1] == second_value:
                    step = first + index + 1
                    if best is None or abs(step - current) < abs(best - current):
                        best = step
            if best is None:
                return Verdict(
                    Reason.INVALID, detail="no two consecutive steps produce these codes"
                )
            last = record.last_step
            # Moving backwards is for a clock that is off, which shows as a drift far from the
            # stored one. Old codes from a device already in sync change the drift by no more
            # than the window (plus the pair's second step): those follow the login rule.
            # A pair that includes the last used step is a replay either way.
            merely_old = abs(best - current - record.drift) <= self.policy.window + 1
            if last is not None and (best - 1 <= last <= best or (merely_old and best <= last)):
                return Verdict(Reason.REPLAYED, detail="these codes' time steps were already used")
            drift = best - current
            won = self.store.resync(
                user_id,
                generation=record.generation,
                expected_last_step=record.last_step,
                step=best,
                drift=drift,
            )
        if not won:
            return Verdict(Reason.REPLAYED, detail="the record changed during the resync")
        return self._accepted(drift)

    # --- recovery codes ------------------------------------------------------------------

    def new_recovery_codes(self, user_id: str) -> list[str]:
        """Return a new set of single-use recovery codes, replacing any earlier set.

        Show them to the user once; only their hashes are stored.
        """
        record = self._record_in(user_id, Status.ACTIVE, "new_recovery_codes")
        codes = generate_recovery_codes(self.policy.recovery_codes)
        hashes = hash_recovery_codes(codes, iterations=self.policy.recovery_iterations)
        with _store_errors("new_recovery_codes"):
            stored = self.store.set_recovery_hashes(
                user_id, generation=record.generation, hashes=hashes
            )
        if not stored:
            raise UserStateError("the user's record changed concurrently; try again")
        return codes

    def use_recovery_code(self, user_id: str, code: str) -> Verdict:
        """Log in with a recovery code instead of an OTP; each code works once."""
        _check_user_id(user_id)
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if normalize_recovery_code(code) is None:
            return self._malformed(user_id)
        now = self._now()
        with _store_errors("use_recovery_code"):
            record = self._charge(user_id, Status.ACTIVE, now)
            if isinstance(record, Verdict):
                return record
            matched = find_recovery_hash(code, record.recovery_hashes)
            if matched is None:
                return Verdict(Reason.INVALID, detail="not one of the user's unused recovery codes")
            won = self.store.consume_recovery_hash(
                user_id, generation=record.generation, code_hash=matched
            )
        if not won:
            return Verdict(Reason.REPLAYED, detail="this recovery code was already used")
        return Verdict(Reason.ACCEPTED, detail="recovery code accepted and used up")

    # --- helpers -------------------------------------------------------------------------

    def _now(self) -> float:
        """Read the injected clock, refusing values no step can be computed from."""
        now = self._clock()
        if type(now) is not float:  # the usual case (time.time) skips the type checks
            if not isinstance(now, int) or isinstance(now, bool):
                raise TypeError("clock must return Unix seconds as int or float")
            now = float(now)
        if not 0 <= now < _LATEST_TIME:  # also false for NaN and infinity
            raise InvalidTimeError(
                "clock returned a time that is negative, not finite, or past year 10**11"
            )
        return now

    def _step(self, now: float) -> int:
        """The time step containing ``now`` (already checked by _now, so int() is the floor)."""
        return int(now) // self.policy.period

    def _new_record(self, user_id: str) -> UserRecord:
        """A fresh SETUP_PENDING record with a new secret and generation."""
        key = _secrets.token_bytes(self.policy.secret_bits // 8)
        return UserRecord(
            user_id=user_id,
            status=Status.SETUP_PENDING,
            secret=self._seal(key, user_id),
            generation=_secrets.randbits(62),
        )

    def _seal(self, key: bytes, user_id: str) -> bytes:
        """Encrypt a key for storage when a cipher is configured."""
        if self._cipher is None:
            return key
        try:
            return self._cipher.encrypt(key, associated_data=user_id.encode("utf-8"))
        except TotpcoreError:
            raise
        except Exception as error:
            raise CipherError(f"the cipher failed to encrypt ({type(error).__name__})") from error

    def _build_otp(self, stored_secret: bytes, user_id: str) -> TOTP:
        """Decrypt a stored secret and build its TOTP (memoised by ``self._otp``)."""
        key = stored_secret
        if self._cipher is not None:
            try:
                key = self._cipher.decrypt(stored_secret, associated_data=user_id.encode("utf-8"))
            except TotpcoreError:
                raise
            except Exception as error:
                raise CipherError(
                    f"the stored secret could not be decrypted ({type(error).__name__})"
                ) from error
        policy = self.policy
        return TOTP(key, digits=policy.digits, algorithm=policy.algorithm, period=policy.period)

    def _record_in(self, user_id: str, status: Status, action: str) -> UserRecord:
        """Return the user's record, or raise UserStateError unless it is in ``status``."""
        _check_user_id(user_id)
        with _store_errors(action):
            record = self.store.get(user_id)
        current = Status.DISABLED if record is None else record.status
        if record is None or current is not status:
            raise UserStateError(
                f"{action} needs a user whose two-factor status is {status.value}, "
                f"but it is {current.value}"
            )
        return record

    def _charge(self, user_id: str, status: Status, now: float) -> UserRecord | Verdict:
        """Charge one attempt; return the record to evaluate against, or why it was refused.

        Store errors propagate to the caller's ``_store_errors`` block.
        """
        attempt = self.store.begin_attempt(user_id, status=status, now=now, limits=self._limits)
        if not attempt.allowed or attempt.record is None:
            return self._refusal(attempt.record, now, status)
        return attempt.record

    def _malformed(self, user_id: str) -> Verdict:
        """Answer a malformed code, without charging an attempt."""
        with _store_errors("verify"):
            record = self.store.get(user_id)
        if record is None:
            return _NOT_ENABLED
        if record.status is Status.SETUP_PENDING:
            return _SETUP_REQUIRED
        return _MALFORMED

    def _refusal(self, record: UserRecord | None, now: float, wanted: Status) -> Verdict:
        """Explain why the store did not allow an attempt."""
        if record is None:
            return _NOT_ENABLED
        if record.status is not wanted:
            if record.status is Status.SETUP_PENDING:
                return _SETUP_REQUIRED
            return Verdict(Reason.NOT_ENABLED, detail=f"the user is {record.status.value}")
        limits = self._limits
        if record.failures >= limits.lockout:
            return Verdict(
                Reason.LOCKED,
                detail=f"locked after {record.failures} consecutive failures; an admin must unlock",
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

    def _learned_drift(self, observed: int, previous: int) -> int:
        """The drift to store after a match ``observed`` steps from the true current step."""
        if not self.policy.learn_drift:
            return previous
        reach = self.policy.max_drift_steps
        return max(-reach, min(reach, observed))

    def _accepted(self, drift: int) -> Verdict:
        """An ACCEPTED verdict carrying the device's drift (one shared instance per drift)."""
        verdict = self._accepted_verdicts.get(drift)
        if verdict is None:
            verdict = Verdict(
                Reason.ACCEPTED,
                drift=drift,
                detail=f"code accepted; {describe_drift(drift, self.policy.period)}",
            )
            self._accepted_verdicts[drift] = verdict
        return verdict


def _check_user_id(user_id: object) -> None:
    """Refuse user ids that are not short, non-empty strings without NUL characters."""
    if not isinstance(user_id, str):
        raise TypeError(f"user_id must be a str, not {type(user_id).__name__}")
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH or "\0" in user_id:
        raise InvalidParameterError(
            f"user_id must be 1 to {MAX_USER_ID_LENGTH} characters without NUL"
        )
    if not user_id.isascii():
        # Stores key records by the UTF-8 bytes; lone surrogates have none.
        try:
            user_id.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidParameterError("user_id is not encodable as UTF-8") from None


def _store_error(action: str, error: Exception) -> StoreError:
    """The StoreError for a backend exception; only its type is named (messages can hold data)."""
    return StoreError(f"the store failed during {action} ({type(error).__name__})")


class _store_errors:  # noqa: N801 - used like a function: `with _store_errors("verify"):`
    """Turn any exception a store raises into StoreError; TotpcoreErrors pass through."""

    __slots__ = ("_action",)

    def __init__(self, action: str) -> None:
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> Literal[False]:
        if error is None or isinstance(error, TotpcoreError) or not isinstance(error, Exception):
            return False
        # Only the exception's type goes into the message: backend messages can quote data.
        raise StoreError(
            f"the store failed during {self._action} ({type(error).__name__})"
        ) from error
