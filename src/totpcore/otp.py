"""HOTP (RFC 4226) and TOTP (RFC 6238): code generation and windowed verification.

Everything here is pure and stateless: no storage, no users, no replay memory (that is the
service's job). Objects are frozen and validate their options once, at construction, so the
hot path only does the arithmetic.

The HMAC arithmetic lives in :mod:`totpcore._engine`, which the service shares. Codes are
compared as integers: each truncated HMAC value and the submitted code are both below
10**8 < 2**30, a single machine word in CPython, so ``==`` has no data-dependent early exit;
and the whole window is always computed, so the time taken does not reveal which slot matched,
or whether any did.

Two counters can share a code (with 6 digits, any two do with a chance of about 10**-6), so
a window can hold more than one match. The match reported is the counter nearest the expected
one, the smallest ``|offset|``; of two equally near ones (offsets ``-k`` and ``+k``) the
earlier counter wins. For HOTP, whose window only looks ahead, that is the lowest matching
counter.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from totpcore._checks import (
    MAX_COUNTER,
    check_algorithm,
    check_counter,
    check_digits,
    check_int,
    check_period,
    check_t0,
)
from totpcore._engine import (
    PACK_COUNTER,
    RECENT_MATCHES,
    UNPACK_WORD,
    Keyed,
    Match,
    code_value,
    new_match,
    remember_match,
)
from totpcore.errors import (
    InvalidParameterError,
    InvalidSecretError,
    InvalidTimeError,
    InvalidURIError,
)
from totpcore.secret import MIN_KEY_BYTES, decode_secret

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["HOTP", "MAX_LOOK_AHEAD", "MAX_WINDOW", "TOTP", "Match", "Time", "Window", "hotp"]

#: Largest number of steps a TOTP window may reach on either side of the current step. Every
#: extra step is one more code an attacker's guess can hit (RFC 4226 §7.1); ten steps is five
#: minutes of clock error at the default 30 s period, more than any phone needs once drift is
#: learned.
MAX_WINDOW = 10
#: Largest HOTP look-ahead (RFC 4226 §7.4 resynchronisation parameter ``s``).
MAX_LOOK_AHEAD = 100

# The default TOTP window. ``window is _DEFAULT_WINDOW`` is the cheapest test for it: CPython
# keeps a single object for each small int, so every 1 passed is this object, and anything
# else (True included, which is not an int window) takes the checked path.
_DEFAULT_WINDOW = 1
# Bound once: a bound dict method is a plain C call, where ``RECENT_MATCHES.get(...)`` in the
# hot path would build a method object on every verify.
_recent = RECENT_MATCHES.get

#: A time: Unix seconds (``int`` or ``float``) or a timezone-aware ``datetime.datetime``.
#: (Written as a string: importing :mod:`datetime` would cost every command-line call; a
#: caller passing a ``datetime`` has imported it already.)
Time: TypeAlias = "int | float | datetime"
#: A verification window: ``n`` steps each side, or a ``(past, future)`` pair.
Window: TypeAlias = int | tuple[int, int]


def _frozen(self: object, name: str, *_: object) -> NoReturn:
    """Refuse to change or delete a field: HOTP and TOTP are immutable values."""
    # The same exception a frozen dataclass raises (an AttributeError); dataclasses is only
    # imported on this error path.
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> str:
    """Return the RFC 4226 HOTP code for ``key`` at ``counter``.

    This is the bare primitive, for checks against test vectors. It refuses only an empty key;
    :class:`HOTP` and :class:`TOTP` also enforce the RFC 4226 minimum of 128 bits.

    Raises:
        InvalidSecretError: ``key`` is empty.
        InvalidParameterError: ``counter``, ``digits`` or ``algorithm`` is out of range.
        TypeError: an argument has the wrong type.
    """
    return HOTP(key, digits=digits, algorithm=algorithm, enforce_key_length=False).generate(counter)


class HOTP:
    """An RFC 4226 counter-based generator and verifier.

    Args:
        key: The shared secret as bytes (see :meth:`from_secret` for base32 text).
        digits: Code length, 6 to 8.
        algorithm: ``"SHA1"``, ``"SHA256"`` or ``"SHA512"``, in any case.
        enforce_key_length: Refuse keys under 128 bits (RFC 4226 §4). Set ``False`` only to
            accept legacy 80-bit secrets.

    Raises:
        InvalidSecretError: the key is empty or too short.
        InvalidParameterError: ``digits`` or ``algorithm`` is out of range.
        TypeError: an option has the wrong type.

    Instances are immutable, hashable, and equal when key, digits and algorithm are; the key
    never appears in their ``repr``.
    """

    # A plain class with slots rather than a dataclass: importing dataclasses (and inspect,
    # which it loads) would double the start-up of every command-line call.
    __slots__ = ("_keyed", "algorithm", "digits", "enforce_key_length", "key")

    key: bytes
    digits: int
    algorithm: str
    enforce_key_length: bool
    # The precomputed HMAC state, built once, so that each code costs two hash copies
    # instead of a full HMAC setup.
    _keyed: Keyed

    def __init__(
        self,
        key: bytes | bytearray,
        *,
        digits: int = 6,
        algorithm: str = "SHA1",
        enforce_key_length: bool = True,
    ) -> None:
        _set_up(self, key, digits, algorithm, enforce_key_length)

    def __repr__(self) -> str:
        return f"HOTP(digits={self.digits!r}, algorithm={self.algorithm!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not HOTP:
            return NotImplemented
        return _identity(self) == _identity(other)

    def __hash__(self) -> int:
        return hash(_identity(self))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through the constructor, so an unpickled object is checked like a new one.
        return _rebuild, (HOTP, self.key, _options(self))

    __setattr__ = __delattr__ = _frozen

    @classmethod
    def from_secret(
        cls,
        secret: str,
        *,
        digits: int = 6,
        algorithm: str = "SHA1",
        enforce_key_length: bool = True,
    ) -> HOTP:
        """Build from a base32 secret (see :func:`~totpcore.decode_secret` for what is accepted)."""
        return cls(
            decode_secret(secret),
            digits=digits,
            algorithm=algorithm,
            enforce_key_length=enforce_key_length,
        )

    @classmethod
    def from_uri(cls, uri: str, *, enforce_key_length: bool = True) -> HOTP:
        """Build from an ``otpauth://hotp/...`` URI; its ``counter`` is in :func:`parse_uri`."""
        from totpcore.uri import parse_uri

        parsed = parse_uri(uri)
        if parsed.kind != "hotp":
            raise InvalidURIError("URI is for TOTP, not HOTP; use TOTP.from_uri")
        return cls(
            parsed.key,
            digits=parsed.digits,
            algorithm=parsed.algorithm,
            enforce_key_length=enforce_key_length,
        )

    def generate(self, counter: int) -> str:
        """Return the code for ``counter`` (0 to 2**64-1)."""
        return self._keyed.code(check_counter(counter))

    def verify(self, code: str, counter: int, *, look_ahead: int = 0) -> Match | None:
        """Check ``code`` against ``counter`` and the ``look_ahead`` counters after it.

        Args:
            code: The submitted code: exactly ``digits`` ASCII digits, optionally grouped with
                spaces ("123 456"). Anything else is simply no match.
            counter: The next counter the server expects.
            look_ahead: How many further counters to accept (0 to :data:`MAX_LOOK_AHEAD`).

        Returns:
            A :class:`Match` whose ``offset`` tells how far ahead the token was, or ``None``.
            If several counters in the look-ahead produce ``code``, the lowest one.

        Raises:
            InvalidParameterError: ``counter`` or ``look_ahead`` is out of range.
            TypeError: ``code`` is not a ``str``, or a number is not an ``int``.
        """
        wanted = code_value(code, self.digits)
        counter = check_counter(counter)
        if not 0 <= check_int(look_ahead, "look_ahead") <= MAX_LOOK_AHEAD:
            raise InvalidParameterError(
                f"look_ahead must be between 0 and {MAX_LOOK_AHEAD}, got {look_ahead}"
            )
        if wanted is None:
            return None
        matched = self._keyed.around(wanted, counter, 0, look_ahead)
        return None if matched < 0 else new_match((matched, matched - counter))

    def uri(self, account: str, *, issuer: str | None = None, counter: int = 0) -> str:
        """Return the ``otpauth://hotp/...`` URI for authenticator apps, starting at ``counter``."""
        from totpcore.uri import OTPAuthURI, build_uri

        return build_uri(
            OTPAuthURI(
                kind="hotp",
                account=account,
                issuer=issuer,
                key=self.key,
                algorithm=self.algorithm,
                digits=self.digits,
                counter=counter,
            )
        )


class TOTP:
    """An RFC 6238 time-based generator and verifier.

    Args:
        key: The shared secret as bytes (see :meth:`from_secret` for base32 text).
        digits: Code length, 6 to 8.
        algorithm: ``"SHA1"``, ``"SHA256"`` or ``"SHA512"``, in any case.
        period: Time step in seconds (RFC 6238 ``X``), 1 or more; 30 is what apps expect.
        t0: Unix time at which step 0 starts (RFC 6238 ``T0``).
        enforce_key_length: Refuse keys under 128 bits (RFC 4226 §4). Set ``False`` only to
            accept legacy 80-bit secrets.

    Raises:
        InvalidSecretError: the key is empty or too short.
        InvalidParameterError: an option is out of range.
        TypeError: an option has the wrong type.

    Instances are immutable, hashable, and equal when key, digits, algorithm, period and t0
    are; the key never appears in their ``repr``.
    """

    # A plain class with slots rather than a dataclass: see HOTP.
    __slots__ = ("_keyed", "algorithm", "digits", "enforce_key_length", "key", "period", "t0")

    key: bytes
    digits: int
    algorithm: str
    enforce_key_length: bool
    period: int
    t0: int
    _keyed: Keyed

    def __init__(
        self,
        key: bytes | bytearray,
        *,
        digits: int = 6,
        algorithm: str = "SHA1",
        enforce_key_length: bool = True,
        period: int = 30,
        t0: int = 0,
    ) -> None:
        _set_up(self, key, digits, algorithm, enforce_key_length)
        object.__setattr__(self, "period", check_period(period))
        object.__setattr__(self, "t0", check_t0(t0))

    def __repr__(self) -> str:
        return (
            f"TOTP(digits={self.digits!r}, algorithm={self.algorithm!r}, "
            f"period={self.period!r}, t0={self.t0!r})"
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not TOTP:
            return NotImplemented
        return _identity(self) == _identity(other)

    def __hash__(self) -> int:
        return hash(_identity(self))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through the constructor, so an unpickled object is checked like a new one.
        return _rebuild, (TOTP, self.key, _options(self))

    __setattr__ = __delattr__ = _frozen

    @classmethod
    def from_secret(
        cls,
        secret: str,
        *,
        digits: int = 6,
        algorithm: str = "SHA1",
        period: int = 30,
        t0: int = 0,
        enforce_key_length: bool = True,
    ) -> TOTP:
        """Build from a base32 secret (see :func:`~totpcore.decode_secret` for what is accepted)."""
        return cls(
            decode_secret(secret),
            digits=digits,
            algorithm=algorithm,
            period=period,
            t0=t0,
            enforce_key_length=enforce_key_length,
        )

    @classmethod
    def from_uri(cls, uri: str, *, enforce_key_length: bool = True) -> TOTP:
        """Build from an ``otpauth://totp/...`` URI."""
        from totpcore.uri import parse_uri

        parsed = parse_uri(uri)
        if parsed.kind != "totp" or parsed.period is None:
            raise InvalidURIError("URI is for HOTP, not TOTP; use HOTP.from_uri")
        return cls(
            parsed.key,
            digits=parsed.digits,
            algorithm=parsed.algorithm,
            period=parsed.period,
            enforce_key_length=enforce_key_length,
        )

    def counter_at(self, at: Time) -> int:
        """Return the time step that contains ``at``: ``floor((at - t0) / period)``.

        Raises:
            InvalidTimeError: ``at`` is NaN, infinite, negative, a naive ``datetime``, earlier
                than ``t0``, or so late that the step passes 2**64-1.
            TypeError: ``at`` is not an ``int``, ``float`` or ``datetime``.
        """
        seconds = _unix_seconds(at)
        return self._step(seconds)

    def _step(self, seconds: int) -> int:
        """Return the step for whole Unix ``seconds``, checking it is representable."""
        if seconds < self.t0:
            raise InvalidTimeError("time is earlier than t0")
        counter = (seconds - self.t0) // self.period
        if counter > MAX_COUNTER:
            raise InvalidTimeError("time is too late: its step does not fit in 64 bits")
        return counter

    def generate(self, at: Time) -> str:
        """Return the code for the step that contains ``at``."""
        return self._keyed.code(self.counter_at(at))

    def now(self) -> str:
        """Return the code for the current system time."""
        return self._keyed.code(self._step(int(time.time())))

    def verify(self, code: str, *, at: Time | None = None, window: Window = 1) -> Match | None:
        """Check ``code`` against the step containing ``at`` and its neighbours.

        Args:
            code: The submitted code: exactly ``digits`` ASCII digits, optionally grouped with
                spaces ("123 456"). Anything else is simply no match.
            at: The time to verify at; the system clock when ``None``.
            window: ``n`` to accept ``n`` steps either side, or ``(past, future)``; each side
                from 0 to :data:`MAX_WINDOW`.

        Returns:
            A :class:`Match`, or ``None`` when no step in the window produces ``code``. If
            several steps produce it, the one nearest the step containing ``at``; of two
            equally near ones, the earlier. Matches are immutable, and an equal one returned
            earlier may be returned again: compare them with ``==``, not ``is``.

        Raises:
            InvalidTimeError: ``at`` is not a usable time (see :meth:`counter_at`).
            InvalidParameterError: ``window`` is out of range.
            TypeError: ``code`` is not a ``str``, or ``at`` or ``window`` has the wrong type.
        """
        # The usual code (exactly ``digits`` ASCII digits) is read inline; anything else takes
        # code_value, which also strips grouping spaces and raises for a non-str.
        digits = self.digits
        if type(code) is str and len(code) == digits and code.isascii() and code.isdigit():
            wanted: int | None = int(code)
        else:
            wanted = code_value(code, digits)
        if at is None and self.t0 == 0:
            # The common case, without the checks _step makes: the system clock is past 1970
            # and far from 2**64 steps, and int() of a positive float is its floor.
            counter = int(time.time()) // self.period
        else:
            counter = self._step(int(time.time()) if at is None else _unix_seconds(at))
        # The window scan of Keyed.around, written out here: the call and its look-ups are a
        # twentieth of a verify. test_engine_scans_agree checks that both scans give the same
        # answer on every window shape, including windows clipped at 0 and 2**64-1.
        if window is _DEFAULT_WINDOW and 0 < counter < MAX_COUNTER:
            # The default ±1 away from both ends of the counter range: three counters as a
            # tuple, where building and running a range() costs a twentieth of a verify.
            candidates: tuple[int, ...] | range = (counter - 1, counter, counter + 1)
        else:
            # Any other int window skips _window(); type(True) is bool, so bools still fail
            # there.
            if type(window) is int and 0 <= window <= MAX_WINDOW:
                past = future = window
            else:
                past, future = _window(window)
            first = counter - past if counter > past else 0
            last = counter + future
            if last > MAX_COUNTER:
                last = MAX_COUNTER
            candidates = range(first, last + 1)
        if wanted is None:
            return None
        keyed = self._keyed
        inner, outer, modulus = keyed.inner, keyed.outer, keyed.modulus
        pack, unpack = PACK_COUNTER, UNPACK_WORD
        matched = -1
        for candidate in candidates:
            mac = inner.copy()
            mac.update(pack(candidate))
            outer_mac = outer.copy()
            outer_mac.update(mac.digest())
            digest = outer_mac.digest()
            # Every slot is computed, match or not; the nearest match wins, ties to the
            # earlier (the reasoning is at Keyed.around).
            if (unpack(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % modulus == wanted and (
                matched < 0 or candidate - counter < counter - matched
            ):
                matched = candidate
        if matched < 0:
            return None
        # The Match handed out last for this step, when measured from the same step: every
        # user's code at this moment matches one of a few steps (see RECENT_MATCHES).
        recent = _recent(matched)
        if recent is not None and recent[0] == counter:
            return recent[1]
        return remember_match(matched, counter)

    def uri(self, account: str, *, issuer: str | None = None) -> str:
        """Return the ``otpauth://totp/...`` URI to show as a QR code on a setup screen.

        Raises:
            InvalidURIError: ``account`` or ``issuer`` cannot be encoded, or ``t0`` is not 0
                (otpauth URIs have no field for it).
        """
        from totpcore.uri import OTPAuthURI, build_uri

        if self.t0:
            raise InvalidURIError("an otpauth URI cannot carry t0; only t0=0 can be shared")
        return build_uri(
            OTPAuthURI(
                kind="totp",
                account=account,
                issuer=issuer,
                key=self.key,
                algorithm=self.algorithm,
                digits=self.digits,
                period=self.period,
            )
        )


def _set_up(
    otp: HOTP | TOTP, key: object, digits: object, algorithm: object, enforce_key_length: object
) -> None:
    """Check and normalise the options HOTP and TOTP share, then precompute the HMAC state.

    A function rather than a base class, so that neither class shows a private base in its
    ``__bases__`` or its documentation.
    """
    checked = _checked_key(key, enforce_key_length)
    digits = check_digits(digits)
    name = check_algorithm(algorithm)
    # The classes are frozen: their own __setattr__ refuses, so set through object.
    set_field = object.__setattr__
    set_field(otp, "key", checked)
    set_field(otp, "digits", digits)
    set_field(otp, "algorithm", name)
    set_field(otp, "enforce_key_length", enforce_key_length)
    set_field(otp, "_keyed", Keyed(checked, digits=digits, algorithm=name))


def _identity(otp: HOTP | TOTP) -> tuple[object, ...]:
    """What equality and hashing compare: the key and the options that change codes."""
    if isinstance(otp, TOTP):
        return (otp.key, otp.digits, otp.algorithm, otp.period, otp.t0)
    return (otp.key, otp.digits, otp.algorithm)


def _options(otp: HOTP | TOTP) -> dict[str, object]:
    """The keyword arguments that rebuild ``otp`` (for pickling)."""
    options: dict[str, object] = {
        "digits": otp.digits,
        "algorithm": otp.algorithm,
        "enforce_key_length": otp.enforce_key_length,
    }
    if isinstance(otp, TOTP):
        options.update(period=otp.period, t0=otp.t0)
    return options


def _rebuild(cls: type[HOTP | TOTP], key: bytes, options: dict[str, Any]) -> HOTP | TOTP:
    """Unpickle an HOTP or TOTP through its constructor."""
    return cls(key, **options)


def _checked_key(key: object, enforce_key_length: object) -> bytes:
    """Return ``key`` as immutable bytes, refusing an empty one and, if enforced, a short one."""
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"key must be bytes, not {type(key).__name__}")
    if not isinstance(enforce_key_length, bool):
        raise TypeError("enforce_key_length must be a bool")
    if not key:
        raise InvalidSecretError("key is empty")
    if enforce_key_length and len(key) < MIN_KEY_BYTES:
        raise InvalidSecretError(
            f"key is {len(key) * 8} bits; RFC 4226 requires at least {MIN_KEY_BYTES * 8} "
            "(pass enforce_key_length=False to accept a legacy shorter key)"
        )
    # A copy, so that changing the caller's bytearray cannot change the key.
    return bytes(key)


def _unix_seconds(at: object) -> int:
    """Return ``at`` as whole Unix seconds, rounding down; refuse times that are not usable."""
    if isinstance(at, bool):
        raise TypeError("time must be Unix seconds or a datetime, not bool")
    # Subclasses of int and float become the plain number they hold (int.__index__ and
    # float.__float__ ignore overrides), so that no caller's own arithmetic or comparisons
    # reach the step computed from them, or the matches shared between callers.
    if isinstance(at, int):
        seconds = at if type(at) is int else int.__index__(at)
    elif isinstance(at, float):
        if not math.isfinite(at):
            raise InvalidTimeError("time must be a finite number of seconds")
        seconds = math.floor(at if type(at) is float else float.__float__(at))
    elif _is_datetime(at):
        seconds = _datetime_seconds(at)  # type: ignore[arg-type]
    else:
        raise TypeError(f"time must be Unix seconds or a datetime, not {type(at).__name__}")
    if seconds < 0:
        raise InvalidTimeError("time must not be before 1970-01-01T00:00:00Z")
    return seconds


def _is_datetime(at: object) -> bool:
    """Whether ``at`` is a ``datetime``, without importing :mod:`datetime`.

    A caller holding a datetime has imported the module already; if nobody has, ``at`` is
    not one.
    """
    module = sys.modules.get("datetime")
    return module is not None and isinstance(at, module.datetime)


def _datetime_seconds(at: datetime) -> int:
    """Whole Unix seconds of an aware datetime, rounding down; a naive one is refused."""
    from datetime import UTC, timedelta
    from datetime import datetime as moment

    if at.utcoffset() is None:
        raise InvalidTimeError("datetime must be timezone-aware; naive times are ambiguous")
    # Exact integer arithmetic on the timedelta: no float rounding, no local time. A subclass
    # overriding the arithmetic must still yield a plain int (int.__index__ raises otherwise).
    return int.__index__((at - moment(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1))


def _window(window: object) -> tuple[int, int]:
    """Return ``(past, future)`` for a window given as ``n`` or as a pair."""
    if isinstance(window, tuple):
        if len(window) != 2:
            raise InvalidParameterError("window must be an int or a (past, future) pair")
        past = check_int(window[0], "window")
        future = check_int(window[1], "window")
    else:
        past = future = check_int(window, "window")
    if not (0 <= past <= MAX_WINDOW and 0 <= future <= MAX_WINDOW):
        raise InvalidParameterError(f"window sides must be between 0 and {MAX_WINDOW}")
    return past, future
