"""Shared secrets: generation and the base32 text form authenticator apps exchange.

Secrets travel as RFC 4648 base32 (the form in otpauth URIs and on setup screens). Canonical
output is upper case without ``=`` padding. Input is forgiving where people are sloppy (case,
spaces and hyphens used for grouping, missing padding) and strict everywhere else, so that two
different texts never silently decode to the same key.
"""

from __future__ import annotations

from totpcore.errors import InvalidParameterError, InvalidSecretError

__all__ = [
    "MAX_SECRET_LENGTH",
    "MIN_KEY_BYTES",
    "decode_secret",
    "encode_secret",
    "generate_secret",
]

#: RFC 4226 §4 R6 requires at least 128 bits of shared secret (160 recommended).
MIN_KEY_BYTES = 16

#: Longest base32 text accepted, after removing grouping characters (1 KiB encodes 640 bytes,
#: far beyond any real key); it bounds the work a hostile input can cause.
MAX_SECRET_LENGTH = 1024

_MAX_GENERATED_BITS = 4096
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# Characters of a full 8-character group left over at the end -> (bytes they carry, pad length).
# 1, 3 and 6 leftover characters cannot come from any byte string.
_TAIL = {0: (0, 0), 2: (1, 6), 4: (2, 4), 5: (3, 3), 7: (4, 1)}
_GROUPING = str.maketrans("", "", " -")
# RFC 4648 base32 digits onto the digits int(..., 32) reads ("0-9A-V", base32hex order): the
# text then decodes in C without the base64 module, which start-up would pay for otherwise.
_TO_INT_DIGITS = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV"
)


def generate_secret(bits: int = 160) -> str:
    """Return a new random secret as canonical base32 (upper case, no padding).

    Args:
        bits: Key size; a multiple of 8 from 128 to 4096. 160 bits is the RFC 4226
            recommendation and what every authenticator app accepts.

    Raises:
        InvalidParameterError: ``bits`` is below 128, above 4096 or not a multiple of 8.
        TypeError: ``bits`` is not an ``int``.
    """
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise TypeError(f"bits must be an int, not {type(bits).__name__}")
    if bits < MIN_KEY_BYTES * 8:
        raise InvalidParameterError(
            f"a secret needs at least {MIN_KEY_BYTES * 8} bits (RFC 4226 §4), got {bits}"
        )
    if bits > _MAX_GENERATED_BITS or bits % 8:
        raise InvalidParameterError(
            f"bits must be a multiple of 8 no larger than {_MAX_GENERATED_BITS}, got {bits}"
        )
    import secrets  # loaded when used: it pulls in random, which most callers never need

    return encode_secret(secrets.token_bytes(bits // 8))


def encode_secret(key: bytes | bytearray) -> str:
    """Return ``key`` as canonical base32: upper case, without ``=`` padding.

    Raises:
        InvalidSecretError: ``key`` is empty.
        TypeError: ``key`` is not ``bytes`` or ``bytearray``.
    """
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"key must be bytes, not {type(key).__name__}")
    if not key:
        raise InvalidSecretError("key is empty")
    import base64  # loaded when used: decoding, which every command does, does not need it

    return base64.b32encode(bytes(key)).decode("ascii").rstrip("=")


def decode_secret(text: str) -> bytes:
    """Decode a base32 secret as people type or paste it.

    Accepted: any letter case, spaces and hyphens anywhere (apps group secrets as
    ``JBSW Y3DP`` or ``JBSW-Y3DP``), and padding that is either absent or exactly right.

    Refused, with :class:`InvalidSecretError`: an empty text; characters outside the base32
    alphabet, including non-ASCII look-alikes; ``=`` anywhere but at the end, or a wrong amount
    of it; lengths no byte string encodes to (1, 3 or 6 characters past a full group); and
    non-zero unused bits in the last character, which would let several texts stand for one key.

    Raises:
        InvalidSecretError: the text is not a canonical base32 secret. The message names the
            problem and a position, never the secret.
        TypeError: ``text`` is not a ``str``.
    """
    compact = _compact(text)
    body = compact.rstrip("=")
    _check_alphabet(body)
    _check_tail(body, padding=len(compact) - len(body))
    # Every character carries 5 bits; the bits past the last whole byte are zero (checked).
    bits = 5 * len(body)
    size, unused = divmod(bits, 8)
    return (int(body.translate(_TO_INT_DIGITS), 32) >> unused).to_bytes(size, "big")


def _compact(text: object) -> str:
    """Return ``text`` upper-cased without grouping characters, if it is a usable length."""
    if not isinstance(text, str):
        raise TypeError(f"secret must be a str, not {type(text).__name__}")
    # Check ASCII before upper-casing: str.upper() maps look-alikes such as U+0131 (dotless i)
    # and U+017F (long s) onto "I" and "S", which would smuggle them past the alphabet check.
    if not text.isascii():
        raise InvalidSecretError("secret contains a non-ASCII character")
    compact = text.translate(_GROUPING).upper()
    if not compact:
        raise InvalidSecretError("secret is empty")
    if len(compact) > MAX_SECRET_LENGTH:
        raise InvalidSecretError(f"secret is longer than {MAX_SECRET_LENGTH} characters")
    return compact


def _check_alphabet(body: str) -> None:
    """Refuse a body (the text before its trailing ``=``) that is empty or not all base32."""
    for position, char in enumerate(body):
        if char not in _ALPHABET:
            what = "'=' before the end" if char == "=" else "a character outside base32"
            raise InvalidSecretError(f"secret has {what} at position {position}")
    if not body:
        raise InvalidSecretError("secret is only padding")


def _check_tail(body: str, padding: int) -> int:
    """Check the last, partial group of ``body``; return the padding it calls for.

    ``padding`` is how many ``=`` followed the body: none, or exactly that many.
    """
    leftover = len(body) % 8
    if leftover not in _TAIL:
        raise InvalidSecretError(
            f"secret length {len(body)} is impossible for base32 "
            f"({leftover} characters after the last full group of 8)"
        )
    tail_bytes, expected_padding = _TAIL[leftover]
    if padding and padding != expected_padding:
        raise InvalidSecretError(
            f"secret has {padding} padding characters where {expected_padding} belong"
        )
    # The last character carries 5 bits, of which only some belong to the final byte; the
    # rest must be zero, or two distinct texts would decode to the same key.
    unused_bits = (5 * leftover - 8 * tail_bytes) if leftover else 0
    if unused_bits and _value(body[-1]) & ((1 << unused_bits) - 1):
        raise InvalidSecretError("secret is not canonical: its last character has unused bits set")
    return expected_padding


def _value(char: str) -> int:
    """Return the 5-bit value of one base32 alphabet character."""
    return ord(char) - ord("A") if char >= "A" else ord(char) - ord("2") + 26
