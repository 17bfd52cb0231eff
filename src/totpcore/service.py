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

from totpcore._throttle import delay_after
from totpcore.cipher import SecretCipher
from totpcore.errors import (
    CipherError,
    InvalidParameterError,
    InvalidSecretError,
    InvalidTimeError,
    StoreError,
    TotpcoreError,
    UserStateError,
)
from totpcore.otp import TOTP
from totpcore.policy import Policy
from totpcore.recovery import (
    find_recovery_hash,
    generate_recovery_codes,
    hash_recovery_codes,
    normalize_recovery_code,
)
from totpcore.secret import MIN_KEY_BYTES, decode_secret, encode_secret
from totpcore.stores.protocol import Limits, Status, Store, UserRecord
from totpcore.uri import OTPAuthURI
from totpcore.verdict import Reason, Verdict, describe_drift

__all__ = ["MAX_CODE_LENGTH", "MAX_USER_ID_LENGTH", "Provisioning", "TwoFactor"]

_INVALID = Verdict(Reason.INVALID, detail="no step in the window produces this code")
_REPLAYED = Verdict(Reason.REPLAYED, detail="this code's time step was already used")
_MALFORMED = Verdict(Reason.MALFORMED, detail="the code is not a well-formed code")
_NOT_ENABLED = Verdict(Reason.NOT_ENABLED, detail="two-factor is not enabled for this user")
_SETUP_REQUIRED = Verdict(Reason.SETUP_REQUIRED, detail="the user has not finished setup")
_NO_PAIR = Verdict(Reason.INVALID, detail="no two consecutive steps produce these codes")

# Clock values from 0 up to 2**62 seconds: steps (and step + drift + window) then stay far
# inside the 8-byte HOTP counter and the signed 64-bit integers stores keep.
_LATEST_TIME = float(2**62)

#: Longest accepted user id, in characters.
MAX_USER_ID_LENGTH = 256
#: Longest code string looked at, in characters; anything longer is MALFORMED before any work
#: (an 8-digit code grouped with spaces needs far less).
MAX_CODE_LENGTH = 64
_OTP_CACHE_SIZE = 4096
# Store-wide settings (Store.get_meta): the cipher's key fingerprint, or "none" for plaintext
# secrets; and whether 0.1.0 ciphertexts (bound to the user id only) may still be present.
_META_CIPHER = "cipher"
_META_LEGACY = "legacy_ciphertexts"
_PLAINTEXT = "none"


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
        policy: Windows, throttling, drift and the parameters of new enrolments.
        clock: Returns the current Unix time in seconds; inject one in tests.
        cipher: Encrypts secrets before they reach the store; ``None`` stores them as is.

    Raises:
        TypeError: ``store``, ``policy``, ``clock`` or ``cipher`` is of the wrong kind.
        InvalidURIError: ``issuer`` cannot appear in an otpauth URI.
        CipherError: the store's secrets are encrypted and ``cipher`` is missing or has none of
            the store's keys, or ``cipher`` is given for a store of unencrypted secrets.
        StoreError: the store failed while its settings were read.

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
        with _store_errors("start-up"):
            self._legacy_ciphertexts = self._check_cipher(store, cipher)
        # Decrypting the secret and precomputing its HMAC pads costs more than the verify; keyed
        # by the stored (possibly encrypted) bytes and the generation, so a new secret can never
        # hit an old entry.
        self._otp = lru_cache(maxsize=_OTP_CACHE_SIZE)(self._build_otp)
        # Verdicts are immutable, so accepted ones are shared per (drift, period): building one
        # costs more than a store round trip in memory.
        self._accepted_verdicts: dict[tuple[int, int], Verdict] = {}

    def __repr__(self) -> str:
        return f"TwoFactor(store={self.store!r}, issuer={self.issuer!r}, policy={self.policy!r})"

    @staticmethod
    def _check_cipher(store: Store, cipher: SecretCipher | None) -> bool:
        """Check the cipher against what the store remembers; return whether legacy is possible.

        The first service on a new store records whether its secrets are encrypted, and under
        which key (a fingerprint, never the key). A service with no key, or the wrong one, then
        fails here, once, instead of failing every user (or writing secrets nobody can read).
        """
        wanted = _PLAINTEXT if cipher is None else _fingerprints(cipher)[0]
        known = store.get_meta(_META_CIPHER)
        if known is None and not store.set_meta(_META_CIPHER, wanted, expected=None):
            known = store.get_meta(_META_CIPHER)  # another server recorded it first
        if known is not None:
            if cipher is None and known != _PLAINTEXT:
                raise CipherError(
                    f"the store's secrets are encrypted (key fingerprint {known}); "
                    "configure the service with that key"
                )
            if cipher is not None and known == _PLAINTEXT:
                raise CipherError(
                    "the store holds unencrypted secrets; a cipher cannot be added to it"
                )
            if cipher is not None and known not in _fingerprints(cipher):
                raise CipherError(
                    f"the store's secrets are encrypted under key fingerprint {known}, "
                    "which this cipher does not have"
                )
        return store.get_meta(_META_LEGACY) == "possible"

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

    def import_secret(
        self,
        user_id: str,
        key: bytes | str,
        *,
        algorithm: str = "SHA1",
        digits: int = 6,
        period: int = 30,
        allow_short_key: bool = False,
    ) -> Status:
        """Make an ACTIVE user from a secret their phone already has (migrations).

        Args:
            user_id: A user with no second factor yet.
            key: The key as bytes, or as base32 text (as in otpauth URIs).
            algorithm: The phone's hash algorithm.
            digits: The phone's code length.
            period: The phone's time step in seconds.
            allow_short_key: Accept keys under 128 bits. Legacy 80-bit secrets are in
                circulation, but each bit less halves the work of an offline search for the key
                from observed codes: prefer re-enrolment.

        Returns:
            ``Status.ACTIVE``.

        Raises:
            UserStateError: the user already has a second factor (disable it first).
            InvalidSecretError: the key is unusable, or short without ``allow_short_key``.
            InvalidParameterError: ``algorithm``, ``digits`` or ``period`` is out of range.
        """
        _check_user_id(user_id)
        raw = decode_secret(key) if isinstance(key, str) else key
        if not isinstance(allow_short_key, bool):
            raise TypeError("allow_short_key must be a bool")
        if not allow_short_key and isinstance(raw, bytes) and len(raw) < MIN_KEY_BYTES:
            raise InvalidSecretError(
                f"key is {len(raw) * 8} bits; RFC 4226 requires at least {MIN_KEY_BYTES * 8} "
                "(pass allow_short_key=True to import a legacy shorter key)"
            )
        # Builds the engine object to validate key and parameters with the engine's own rules.
        otp = TOTP(raw, algorithm=algorithm, digits=digits, period=period, enforce_key_length=False)
        generation = _secrets.randbits(62)
        record = UserRecord(
            user_id=user_id,
            status=Status.ACTIVE,
            secret=self._seal(otp.key, user_id, generation),
            generation=generation,
            algorithm=otp.algorithm,
            digits=otp.digits,
            period=otp.period,
        )
        with _store_errors("import_secret"):
            inserted = self.store.insert(record)
        if not inserted:
            raise UserStateError("the user already has two-factor; disable it before importing")
        return Status.ACTIVE

    def status(self, user_id: str) -> Status:
        """Return DISABLED, SETUP_PENDING or ACTIVE."""
        _check_user_id(user_id)
        with _store_errors("status"):
            record = self.store.get(user_id)
        return Status.DISABLED if record is None else record.status

    def reset(self, user_id: str) -> None:
        """Replace an ACTIVE user's secret and send them back to setup.

        The old secret stops working at once, recovery codes are discarded, any lock is lifted
        and the guessing budget refilled. Raises :class:`~totpcore.UserStateError` for a user
        who is not ACTIVE: a pending user's secret (say, one that leaked from the setup screen)
        is replaced with :meth:`disable` then :meth:`enable`.
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
        """Clear the user's failures and lock, and refill the guessing budget (admin action)."""
        _check_user_id(user_id)
        with _store_errors("unlock"):
            found = self.store.unlock(user_id)
        if not found:
            raise UserStateError("two-factor is not enabled for this user")

    def rotate_key(self) -> int:
        """Re-encrypt every stored secret under the cipher's current key; return how many.

        Safe while the service runs: each secret is replaced by a compare-and-set on the
        bytes read, so a concurrent reset wins and is not overwritten. Afterwards the store
        remembers the current key's fingerprint, and 0.1.0 ciphertexts are no longer accepted.
        """
        cipher = self._cipher
        if cipher is None:
            raise CipherError("rotate_key needs a service configured with a cipher")
        rewritten = 0
        with _store_errors("rotate_key"):
            for user_id in self.store.user_ids():
                rewritten += self._rewrap(user_id, cipher)
            current = _fingerprints(cipher)[0]
            known = self.store.get_meta(_META_CIPHER)
            self.store.set_meta(_META_CIPHER, current, expected=known)
            if self._legacy_ciphertexts:
                self.store.set_meta(_META_LEGACY, "rewritten", expected="possible")
                self._legacy_ciphertexts = False
        return rewritten

    def _rewrap(self, user_id: str, cipher: SecretCipher) -> int:
        """Re-encrypt one user's secret under the current key; return 1 if it was rewritten."""
        while True:
            record = self.store.get(user_id)
            if record is None:
                return 0
            key = self._open(record)
            sealed = self._seal(key, user_id, record.generation, cipher=cipher)
            if self.store.set_secret(
                user_id, generation=record.generation, expected=record.secret, secret=sealed
            ):
                return 1

    # --- setup ---------------------------------------------------------------------------

    def begin_setup(self, user_id: str, *, account_name: str | None = None) -> Provisioning:
        """Return the secret and URI for the setup screen (only while SETUP_PENDING).

        The same secret is returned every time until setup completes, so a user can scan it
        on several phones. ``account_name`` (default: the user id) is what the app displays.
        """
        record = self._record_in(user_id, Status.SETUP_PENDING, "begin_setup")
        account = user_id if account_name is None else account_name
        otp = self._otp_of(record)
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
        parsed = _parse_code(code)
        if parsed is None:
            return _MALFORMED
        now = self._now()
        with _store_errors("complete_setup"):
            record = self._charge(user_id, Status.SETUP_PENDING, now)
            if isinstance(record, Verdict):
                return record
            if parsed[1] != record.digits:
                return _INVALID
            otp = self._otp_of(record)
            window = self.policy.window
            match = otp._around(parsed[0], int(now) // record.period, window, window)
            if match is None:
                return _INVALID
            drift = self._learned_drift(match.offset, 0, record.period)
            won = self.store.activate(
                user_id,
                generation=record.generation,
                step=match.counter,
                drift=drift,
                charged_at=now,
            )
        if not won:
            return Verdict(Reason.REPLAYED, detail="setup was completed or reset concurrently")
        return self._accepted(drift, record.period)

    # --- login ---------------------------------------------------------------------------

    def verify(self, user_id: str, code: str) -> Verdict:
        """Check a login code: replay-protected, throttled and drift-aware.

        A step is accepted at most once (RFC 6238 §5.2): a code whose step is at or below the
        replay mark (the highest step ever accepted) is REPLAYED.
        """
        return self._check(user_id, code, allow_equal=False)

    def verify_request(self, user_id: str, code: str) -> Verdict:
        """Check a code sent with an API request (the ``otp`` header).

        As :meth:`verify`, except that a repeat of the last accepted step is allowed while it
        is still inside the window, because a client sends the same code with every request
        of a 30-second step. An older step is never accepted. A repeat only takes back its own
        charge: it never clears earlier failures, so it cannot reset the throttle.
        """
        return self._check(user_id, code, allow_equal=True)

    def _check(self, user_id: str, code: str, *, allow_equal: bool) -> Verdict:
        """The login check behind :meth:`verify` and :meth:`verify_request`.

        This is the hot path: store calls get plain try/except (free when nothing is raised)
        rather than the context manager the admin calls use, the step is computed once in
        integer seconds, and fixed verdicts are shared constants.
        """
        _check_user_id(user_id)
        parsed = _parse_code(code)
        if parsed is None:
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
        if parsed[1] != record.digits:
            return _INVALID  # well formed, but not this user's length: a wrong code
        otp = self._otp_of(record)
        current = int(now) // record.period
        window = self.policy.window
        # Centre the window on where this user's device is known to be; the code was parsed
        # above, so the engine only scans.
        match = otp._around(parsed[0], current + record.drift, window, window)
        if match is None:
            return _INVALID
        if match.counter == record.last_step:
            # A repeat (API-header mode) tells nothing new about the device's clock; learning
            # from it would let one code walk the window backwards and never expire.
            drift = record.drift
        else:
            drift = self._learned_drift(match.counter - current, record.drift, record.period)
        try:
            won = self.store.mark_used(
                user_id,
                generation=record.generation,
                step=match.counter,
                drift=drift,
                allow_equal=allow_equal,
                charged_at=now,
            )
        except TotpcoreError:
            raise
        except Exception as error:
            raise _store_error("verify", error) from error
        return self._accepted(drift, record.period) if won else _REPLAYED

    def resync(self, user_id: str, code1: str, code2: str) -> Verdict:
        """Resynchronise a device whose clock is far off, from two consecutive fresh codes.

        Searches ``policy.max_drift`` either side of now for two consecutive steps producing
        ``code1`` then ``code2``; the pair nearest to now wins. Both steps must lie strictly
        above the replay mark: a step once accepted is never accepted again by any path, so
        codes from logs or an earlier session cannot reopen anything. On success the drift is
        set to the pair's offset and the replay mark moves to the second step. A phone whose
        clock runs slow and that has already been used behind the mark cannot be brought back
        this way: fix its time, or have an admin reset it. Counts as an attempt for throttling.
        """
        _check_user_id(user_id)
        first_code = _parse_code(code1)
        second_code = _parse_code(code2)
        if first_code is None or second_code is None:
            return self._malformed(user_id)
        now = self._now()
        with _store_errors("resync"):
            record = self._charge(user_id, Status.ACTIVE, now)
            if isinstance(record, Verdict):
                return record
            if first_code[1] != record.digits or second_code[1] != record.digits:
                return _NO_PAIR
            current = int(now) // record.period
            best = _nearest_pair(
                self._otp_of(record),
                first_code[0],
                second_code[0],
                current,
                self.policy.max_drift // record.period,
            )
            if best is None:
                return _NO_PAIR
            if record.last_step is not None and best - 1 <= record.last_step:
                return Verdict(
                    Reason.REPLAYED, detail="these codes are not above the last accepted step"
                )
            drift = best - current
            won = self.store.resync(
                user_id, generation=record.generation, step=best, drift=drift, charged_at=now
            )
        if not won:
            return Verdict(Reason.REPLAYED, detail="the record changed during the resync")
        return self._accepted(drift, record.period)

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
        if len(code) > MAX_CODE_LENGTH or normalize_recovery_code(code) is None:
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
                user_id, generation=record.generation, code_hash=matched, charged_at=now
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

    def _new_record(self, user_id: str) -> UserRecord:
        """A fresh SETUP_PENDING record with a new secret and generation, from the policy."""
        policy = self.policy
        key = _secrets.token_bytes(policy.secret_bits // 8)
        generation = _secrets.randbits(62)
        return UserRecord(
            user_id=user_id,
            status=Status.SETUP_PENDING,
            secret=self._seal(key, user_id, generation),
            generation=generation,
            algorithm=policy.algorithm,
            digits=policy.digits,
            period=policy.period,
        )

    def _seal(
        self, key: bytes, user_id: str, generation: int, *, cipher: SecretCipher | None = None
    ) -> bytes:
        """Encrypt a key for storage when a cipher is configured, bound to user and generation."""
        cipher = cipher or self._cipher
        if cipher is None:
            return key
        try:
            return cipher.encrypt(key, associated_data=_associated_data(user_id, generation))
        except TotpcoreError:
            raise
        except Exception as error:
            raise CipherError(f"the cipher failed to encrypt ({type(error).__name__})") from error

    def _open(self, record: UserRecord) -> bytes:
        """Decrypt a record's secret (plain stores keep it as is)."""
        cipher = self._cipher
        if cipher is None:
            return record.secret
        data = _associated_data(record.user_id, record.generation)
        try:
            return cipher.decrypt(record.secret, associated_data=data)
        except Exception as error:
            opened = self._open_legacy(record, cipher)
            if opened is not None:
                return opened
            if isinstance(error, TotpcoreError):
                raise
            raise CipherError(
                f"the stored secret could not be decrypted ({type(error).__name__})"
            ) from error

    def _open_legacy(self, record: UserRecord, cipher: SecretCipher) -> bytes | None:
        """Read a secret 0.1.0 wrote, where the store says such secrets may remain.

        0.1.0 bound a ciphertext to the user id only. Accepted only on a store migrated from
        0.1.0, until ``rotate_key`` has rewritten every secret; then never again, so a
        pre-reset ciphertext put back by someone with write access to the store stays dead.
        """
        if not self._legacy_ciphertexts:
            return None
        try:
            return cipher.decrypt(record.secret, associated_data=record.user_id.encode("utf-8"))
        except Exception:
            return None

    def _build_otp(
        self, secret: bytes, user_id: str, generation: int, algorithm: str, digits: int, period: int
    ) -> TOTP:
        """Decrypt a stored secret and build its TOTP (memoised by ``self._otp``)."""
        record = UserRecord(user_id, Status.ACTIVE, secret, generation)
        return TOTP(
            self._open(record),
            digits=digits,
            algorithm=algorithm,
            period=period,
            # Imported legacy keys were checked (and allowed) once, at import.
            enforce_key_length=False,
        )

    def _otp_of(self, record: UserRecord) -> TOTP:
        """The user's TOTP, with the parameters they enrolled with."""
        return self._otp(
            record.secret,
            record.user_id,
            record.generation,
            record.algorithm,
            record.digits,
            record.period,
        )

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
        if record.locked_at is not None:
            return Verdict(
                Reason.LOCKED,
                detail=f"locked after {record.failures} consecutive failures "
                f"({len(record.failure_log)} in 24 h); an admin must unlock",
            )
        limits = self._limits
        delay = delay_after(record.failures, free=limits.free, base=limits.base, cap=limits.cap)
        # Explicit None test: 0.0 is a valid time (a clock at the epoch), not "never".
        since = 0.0 if record.last_failure_at is None else now - record.last_failure_at
        retry_after = max(delay - since, 0.001)
        return Verdict(
            Reason.THROTTLED,
            retry_after=retry_after,
            detail=f"{record.failures} consecutive failures; next attempt in {retry_after:.1f} s",
        )

    def _learned_drift(self, observed: int, previous: int, period: int) -> int:
        """The drift to store after a match ``observed`` steps from the true current step.

        Clamped to ``max_drift``: a phone that keeps losing time must not walk the window
        further than the policy allows.
        """
        if not self.policy.learn_drift:
            return previous
        reach = self.policy.max_drift // period
        return max(-reach, min(reach, observed))

    def _accepted(self, drift: int, period: int) -> Verdict:
        """An ACCEPTED verdict carrying the device's drift (one shared instance per drift)."""
        verdict = self._accepted_verdicts.get((drift, period))
        if verdict is None:
            verdict = Verdict(
                Reason.ACCEPTED,
                drift=drift,
                detail=f"code accepted; {describe_drift(drift, period)}",
            )
            self._accepted_verdicts[drift, period] = verdict
        return verdict


def _fingerprints(cipher: SecretCipher) -> tuple[str, ...]:
    """The cipher's key fingerprints, current first; checked, since ciphers are pluggable."""
    try:
        fingerprints = tuple(cipher.fingerprints())
    except Exception as error:
        raise CipherError(f"the cipher failed to name its keys ({type(error).__name__})") from error
    if not fingerprints or not all(isinstance(item, str) and item for item in fingerprints):
        raise CipherError("the cipher's fingerprints() must return non-empty strings")
    return fingerprints


def _associated_data(user_id: str, generation: int) -> bytes:
    """What a ciphertext is bound to: one user's one enrolment.

    A ciphertext copied to another user, or put back after a reset (which draws a new
    generation), fails to decrypt.
    """
    return b"totpcore/2\0%s\0%d" % (user_id.encode("utf-8"), generation)


def _parse_code(code: object) -> tuple[int, int] | None:
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


def _nearest_pair(otp: TOTP, first: int, second: int, current: int, reach: int) -> int | None:
    """The second step of the consecutive pair producing ``first, second`` nearest to now.

    Every pair within ``reach`` steps of ``current`` is compared (no early exit); on a tie the
    earlier pair wins, as for single codes.
    """
    start = max(current - reach, 0)
    values = otp._values(start, current + reach + 1)
    best: int | None = None
    for index in range(len(values) - 1):
        if values[index] == first and values[index + 1] == second:
            step = start + index + 1
            if best is None or abs(step - current) < abs(best - current):
                best = step
    return best


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
