"""Recovery codes: single-use codes that let a user in without their phone.

A code is 12 characters of Crockford's base32 (60 random bits), shown as ``xxxx-xxxx-xxxx``.
Typing is forgiving: case, spaces and hyphens do not matter, and the look-alikes ``i``/``l``
and ``o`` are read as ``1`` and ``0``.

Only hashes are stored: PBKDF2-HMAC-SHA256 from the standard library, with one random salt per
set. Sharing the salt within a set is what lets a check cost exactly one hash computation
however many codes are left: the attempt is hashed once and compared with every stored hash.
The cost is sized for what the codes are, 60 random bits rather than passwords: 4,000
iterations (the :class:`~totpcore.Policy` default) keep an attempt near a millisecond and a new
set of ten near 15 ms, while an offline search through a stolen set still needs about 2**59
guesses of 4,000 HMAC-SHA256 pairs each, hundreds of GPU-years (the security notes give the
arithmetic). Hashes stored with another iteration count, such as 0.1.0's 100,000, keep
working: the count is part of each stored hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Internal to the service: applications use TwoFactor.new_recovery_codes / use_recovery_code.
__all__: list[str] = []

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
_LOOK_ALIKES = str.maketrans({"i": "1", "l": "1", "o": "0", "-": None, " ": None})
#: Characters in a code: 12 x 5 = 60 bits of entropy.
CODE_LENGTH = 12
_SCHEME = "pbkdf2_sha256"


def generate_recovery_codes(count: int) -> list[str]:
    """Return ``count`` new random codes formatted as ``xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalize_recovery_code(text: str) -> str | None:
    """Return the canonical 12 characters of a typed code, or ``None`` if it cannot be one."""
    if not text.isascii():
        return None
    compact = text.lower().translate(_LOOK_ALIKES)
    if len(compact) != CODE_LENGTH or not all(char in _ALPHABET for char in compact):
        return None
    return compact


def hash_recovery_codes(codes: list[str], *, iterations: int) -> tuple[str, ...]:
    """Hash a new set of codes with one fresh salt; returns the strings to store."""
    salt = secrets.token_bytes(16)
    hashes = []
    for code in codes:
        canonical = normalize_recovery_code(code)
        if canonical is None:  # pragma: no cover - generate_recovery_codes never makes one
            raise ValueError("not a recovery code")
        hashes.append(_encode(iterations, salt, _derive(canonical, salt, iterations)))
    return tuple(hashes)


def find_recovery_hash(code: str, stored: tuple[str, ...]) -> str | None:
    """Return the stored hash that ``code`` matches, or ``None``.

    The attempt is hashed once per distinct (salt, iterations) pair among ``stored``, which is
    once for any set this module made, and compared with every entry without an early exit.
    """
    canonical = normalize_recovery_code(code)
    if canonical is None:
        return None
    derived: dict[tuple[int, bytes], bytes] = {}
    found = None
    for entry in stored:
        parsed = _decode(entry)
        if parsed is None:
            continue
        iterations, salt, digest = parsed
        key = (iterations, salt)
        if key not in derived:
            derived[key] = _derive(canonical, salt, iterations)
        if hmac.compare_digest(derived[key], digest):
            found = entry
    return found


def _derive(canonical: str, salt: bytes, iterations: int) -> bytes:
    """The stored digest of a canonical code."""
    return hashlib.pbkdf2_hmac("sha256", canonical.encode("ascii"), salt, iterations)


def _encode(iterations: int, salt: bytes, digest: bytes) -> str:
    """Serialise one hash as ``pbkdf2_sha256$iterations$salt$digest`` (base64, no padding)."""
    return "$".join((_SCHEME, str(iterations), _b64(salt), _b64(digest)))


def _decode(entry: str) -> tuple[int, bytes, bytes] | None:
    """Parse a stored hash; ``None`` for anything this module did not write."""
    parts = entry.split("$")
    if len(parts) != 4 or parts[0] != _SCHEME or not parts[1].isdigit():
        return None
    try:
        salt = base64.urlsafe_b64decode(parts[2] + "==")
        digest = base64.urlsafe_b64decode(parts[3] + "==")
    except ValueError:
        return None
    return int(parts[1]), salt, digest


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
