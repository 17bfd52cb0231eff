"""The RFC 4226 Appendix D and RFC 6238 Appendix B test vectors, as data.

``totpcore vectors`` runs them against totpcore or any other implementation. RFC 6238's
SHA256 and SHA512 vectors use 32- and 64-byte seeds (the ASCII digits repeated), not the
20-byte SHA1 seed its reference code shows.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["VECTORS", "Vector"]

_KEY_SHA1 = b"12345678901234567890".hex()
_KEY_SHA256 = b"12345678901234567890123456789012".hex()
_KEY_SHA512 = (b"1234567890" * 6 + b"1234").hex()


class Vector(NamedTuple):
    """One published test vector.

    Attributes:
        kind: ``"hotp"`` (RFC 4226) or ``"totp"`` (RFC 6238).
        key_hex: The key as hexadecimal.
        algorithm: ``"SHA1"``, ``"SHA256"`` or ``"SHA512"``.
        digits: Code length.
        counter: The HOTP counter (for TOTP, the time step).
        time: Unix seconds (TOTP only).
        period: Time step in seconds (TOTP only).
        code: The expected code.
    """

    kind: Literal["hotp", "totp"]
    key_hex: str
    algorithm: str
    digits: int
    counter: int
    time: int | None
    period: int | None
    code: str


#: All 28 vectors: 10 from RFC 4226, 18 from RFC 6238.
VECTORS: tuple[Vector, ...] = (
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 0, None, None, "755224"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 1, None, None, "287082"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 2, None, None, "359152"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 3, None, None, "969429"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 4, None, None, "338314"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 5, None, None, "254676"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 6, None, None, "287922"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 7, None, None, "162583"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 8, None, None, "399871"),
    Vector("hotp", _KEY_SHA1, "SHA1", 6, 9, None, None, "520489"),
    Vector("totp", _KEY_SHA1, "SHA1", 8, 1, 59, 30, "94287082"),
    Vector("totp", _KEY_SHA256, "SHA256", 8, 1, 59, 30, "46119246"),
    Vector("totp", _KEY_SHA512, "SHA512", 8, 1, 59, 30, "90693936"),
    Vector("totp", _KEY_SHA1, "SHA1", 8, 37037036, 1111111109, 30, "07081804"),
    Vector("totp", _KEY_SHA256, "SHA256", 8, 37037036, 1111111109, 30, "68084774"),
    Vector("totp", _KEY_SHA512, "SHA512", 8, 37037036, 1111111109, 30, "25091201"),
    Vector("totp", _KEY_SHA1, "SHA1", 8, 37037037, 1111111111, 30, "14050471"),
    Vector("totp", _KEY_SHA256, "SHA256", 8, 37037037, 1111111111, 30, "67062674"),
    Vector("totp", _KEY_SHA512, "SHA512", 8, 37037037, 1111111111, 30, "99943326"),
    Vector("totp", _KEY_SHA1, "SHA1", 8, 41152263, 1234567890, 30, "89005924"),
    Vector("totp", _KEY_SHA256, "SHA256", 8, 41152263, 1234567890, 30, "91819424"),
    Vector("totp", _KEY_SHA512, "SHA512", 8, 41152263, 1234567890, 30, "93441116"),
    Vector("totp", _KEY_SHA1, "SHA1", 8, 66666666, 2000000000, 30, "69279037"),
    Vector("totp", _KEY_SHA256, "SHA256", 8, 66666666, 2000000000, 30, "90698825"),
    Vector("totp", _KEY_SHA512, "SHA512", 8, 66666666, 2000000000, 30, "38618901"),
    Vector("totp", _KEY_SHA1, "SHA1", 8, 666666666, 20000000000, 30, "65353130"),
    Vector("totp", _KEY_SHA256, "SHA256", 8, 666666666, 20000000000, 30, "77737706"),
    Vector("totp", _KEY_SHA512, "SHA512", 8, 666666666, 20000000000, 30, "47863826"),
)
