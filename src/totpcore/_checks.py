"""Validation of the numeric and named options shared by the engine and URIs.

Each check returns the normalised value or raises: :class:`TypeError` for a value of the wrong
type (``bool`` counts as wrong: ``digits=True`` is a bug, not a 1), and
:class:`~totpcore.errors.InvalidParameterError` for a value out of range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from totpcore.errors import InvalidParameterError

try:
    # CPython's OpenSSL constructors, which hashlib.sha1 and the others are. Importing hashlib
    # itself would first try every algorithm it knows (fifteen OpenSSL fetches), a tenth of a
    # command-line call's start-up, where three are needed.
    from _hashlib import openssl_sha1 as _sha1
    from _hashlib import openssl_sha256 as _sha256
    from _hashlib import openssl_sha512 as _sha512
except ImportError:  # another Python, or one built without OpenSSL: hashlib's own choice
    from hashlib import sha1 as _sha1
    from hashlib import sha256 as _sha256
    from hashlib import sha512 as _sha512

#: Hash algorithms RFC 6238 names, in their canonical spelling.
ALGORITHMS = ("SHA1", "SHA256", "SHA512")
HASHES: dict[str, Callable[..., Any]] = {"SHA1": _sha1, "SHA256": _sha256, "SHA512": _sha512}
MIN_DIGITS = 6
MAX_DIGITS = 8
#: RFC 4226 counters are 8-byte unsigned integers.
MAX_COUNTER = 2**64 - 1
#: Longest accepted time step; longer ones would make a code live for over a century.
MAX_PERIOD = 2**32 - 1


def check_int(value: object, name: str) -> int:
    """Return ``value`` as a plain ``int`` if it is one (not a ``bool``), else raise TypeError.

    An ``int`` subclass is replaced by the plain number it holds: its own arithmetic,
    comparisons or hashing (``int.__index__`` ignores every override) must not follow the
    value into the engine, where results are compared and shared between callers.
    """
    if type(value) is int:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return int.__index__(value)


def check_range(value: object, name: str, low: int, high: int) -> int:
    """Return ``value`` if it is an ``int`` within ``low..high``."""
    number = check_int(value, name)
    if not low <= number <= high:
        raise InvalidParameterError(f"{name} must be between {low} and {high}, got {number}")
    return number


def check_algorithm(name: object) -> str:
    """Return the canonical spelling of a hash algorithm name given in any case."""
    if not isinstance(name, str):
        raise TypeError(f"algorithm must be a str, not {type(name).__name__}")
    canonical = name.upper()
    # isascii() first: upper() would turn some non-ASCII letters into ASCII ones.
    if not name.isascii() or canonical not in HASHES:
        raise InvalidParameterError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    return canonical


def check_digits(digits: object) -> int:
    """Return ``digits`` if it is an ``int`` from 6 to 8."""
    return check_range(digits, "digits", MIN_DIGITS, MAX_DIGITS)


def check_period(period: object) -> int:
    """Return ``period`` (seconds) if it is an ``int`` from 1 to 2**32-1."""
    return check_range(period, "period", 1, MAX_PERIOD)


def check_t0(t0: object) -> int:
    """Return ``t0`` (Unix seconds) if it is a non-negative ``int``."""
    return check_range(t0, "t0", 0, 2**63 - 1)


def check_counter(counter: object, name: str = "counter") -> int:
    """Return ``counter`` if it is an ``int`` from 0 to 2**64-1."""
    return check_range(counter, name, 0, MAX_COUNTER)


#: Longest accepted user id, in characters.
MAX_USER_ID_LENGTH = 256


def check_user_id(user_id: object) -> None:
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
