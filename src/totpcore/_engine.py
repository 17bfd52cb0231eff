"""The HOTP arithmetic (RFC 4226 on RFC 2104 HMAC), shared by the engine and the service.

Nothing here validates: callers check their options first (:mod:`totpcore.otp` does, and the
service stores only checked records). Every name the other modules use is public, so no module
has to reach into another one's private attributes.

Codes are compared as integers: each truncated HMAC value and the submitted code are both
below 10**8 < 2**30, a single machine word in CPython, so ``==`` has no data-dependent early
exit; and :meth:`Keyed.around` always computes the whole window, so the time taken does not
reveal which slot matched, or whether any did.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from totpcore._checks import HASHES, MAX_COUNTER

__all__ = ["BLOCK_SIZES", "MAX_COUNTER", "Keyed", "Match", "code_value", "new_match"]

# Pre-bound packers: the counter is an 8-byte big-endian message (RFC 4226 §5.2) and dynamic
# truncation reads 4 bytes big-endian at an offset (§5.3).
_pack_counter: Callable[[int], bytes] = struct.Struct(">Q").pack
_unpack_word: Callable[[bytes, int], tuple[int]] = struct.Struct(">I").unpack_from
# HMAC pads (RFC 2104): the key XOR 0x36 for the inner hash and XOR 0x5C for the outer one.
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))
# Each hash's block size (the HMAC key block), and the code templates of the usual lengths.
# Written out (FIPS 180-4): asking OpenSSL would fetch every algorithm at import, about a
# millisecond each, where a command-line call needs one. A test checks them against hashlib.
BLOCK_SIZES = {"SHA1": 64, "SHA256": 64, "SHA512": 128}
_TEMPLATES = {digits: f"%0{digits}d" for digits in range(6, 9)}


class Match(tuple[int, int]):
    """A successful verification: an immutable ``(counter, offset)`` pair, always true.

    Attributes:
        counter: The HOTP counter (for TOTP, the time step) the code belongs to.
        offset: Distance in steps from the expected counter: negative when the code is older
            than expected (a slow clock), positive when newer.
    """

    # A tuple subclass written out rather than a typing.NamedTuple: building a NamedTuple
    # class at import costs a tenth of a command-line call's start-up.
    __slots__ = ()

    def __new__(cls, counter: int, offset: int) -> Match:
        return tuple.__new__(cls, (counter, offset))

    @property
    def counter(self) -> int:
        """The HOTP counter (for TOTP, the time step) the code belongs to."""
        return self[0]

    @property
    def offset(self) -> int:
        """Distance in steps from the expected counter (negative: the code is older)."""
        return self[1]

    def __repr__(self) -> str:
        return f"Match(counter={self[0]!r}, offset={self[1]!r})"

    def __getnewargs__(self) -> tuple[int, int]:
        return (self[0], self[1])


# The public home of Match is totpcore.otp (and the package root); naming it there keeps
# pickles and documentation what they were before the arithmetic moved into this module.
Match.__module__ = "totpcore.otp"
# Built by tuple.__new__ bound in C: every correct code builds one, and a Python-level
# constructor (like a frozen dataclass's __init__) costs a tenth of a verify.
new_match: Callable[[tuple[int, int]], Match] = functools.partial(tuple.__new__, Match)


class Keyed:
    """Precomputed HMAC state of one key (inner/outer pad hash objects), the hot path.

    Building one pads the key and starts both pad hashes once, so that each candidate counter
    then costs two hash copies instead of a full HMAC setup.

    Args:
        key: The shared secret. Keys longer than the hash block are hashed first (RFC 2104).
        digits: Code length. Not checked: any positive count works arithmetically.
        algorithm: Canonical hash name, a key of :data:`totpcore._checks.HASHES`.

    Attributes:
        key: The shared secret, as given.
        digits: Code length.
        algorithm: Canonical hash name.
        inner: Hash object already fed the inner pad (key XOR 0x36); copied per counter.
        outer: Hash object already fed the outer pad (key XOR 0x5C); copied per counter.
    """

    __slots__ = ("_modulus", "_template", "algorithm", "digits", "inner", "key", "outer")

    key: bytes
    digits: int
    algorithm: str
    inner: Any
    outer: Any
    _modulus: int
    _template: str

    def __init__(self, key: bytes, *, digits: int, algorithm: str) -> None:
        new_hash = HASHES[algorithm]
        # Tables rather than a throwaway hash object and a new format string per key: a
        # service building keys for many users pays this on every key-cache miss.
        block_size = BLOCK_SIZES[algorithm]
        if len(key) > block_size:  # RFC 2104 §2: long keys are hashed first
            key_block = new_hash(key).digest().ljust(block_size, b"\0")
        else:
            key_block = key.ljust(block_size, b"\0")
        self.key = key
        self.digits = digits
        self.algorithm = algorithm
        self.inner = new_hash(key_block.translate(_INNER_PAD))
        self.outer = new_hash(key_block.translate(_OUTER_PAD))
        self._modulus = 10**digits
        # %-formatting: the fastest zero-padding in CPython.
        self._template = _TEMPLATES.get(digits) or f"%0{digits}d"

    def value(self, counter: int) -> int:
        """Return the truncated HOTP value of ``counter`` (0 to 2**64-1, not checked)."""
        inner = self.inner.copy()
        inner.update(_pack_counter(counter))
        outer = self.outer.copy()
        outer.update(inner.digest())
        digest = outer.digest()
        return (_unpack_word(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % self._modulus

    def code(self, counter: int) -> str:
        """Return the code of ``counter`` (0 to 2**64-1, not checked), zero-padded."""
        # The body of value(), inlined: generate() is one HMAC, so the extra call would be a
        # few percent of it.
        inner = self.inner.copy()
        inner.update(_pack_counter(counter))
        outer = self.outer.copy()
        outer.update(inner.digest())
        digest = outer.digest()
        value = (_unpack_word(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % self._modulus
        return self._template % value

    def values(self, first: int, last: int) -> list[int]:
        """Return the values of the counters ``first..last``, stopping at 2**64-1.

        For resynchronisation, which looks for consecutive codes; ``first`` must not be
        negative.
        """
        value = self.value
        return [value(counter) for counter in range(first, min(last, MAX_COUNTER) + 1)]

    def around(self, wanted: int, counter: int, past: int, future: int) -> int:
        """Match a parsed code against every counter in ``counter - past .. counter + future``.

        The window is clipped to the valid counters 0 .. 2**64-1 and always computed whole,
        with no early exit. Of several matching counters, the nearest to ``counter`` (the
        smallest ``|offset|``) wins; of two equally near ones (offsets ``-k`` and ``+k``), the
        earlier.

        Args:
            wanted: The submitted code as an integer (see :func:`code_value`).
            counter: The expected counter; the offset in the result is measured from it.
            past: How many counters before ``counter`` to accept, 0 or more.
            future: How many counters after ``counter`` to accept, 0 or more.

        Returns:
            The matching counter, or -1 when no counter in the window produces ``wanted``. A
            plain int: the service needs only the counter, and building a :class:`Match`
            (which callers like :meth:`totpcore.TOTP.verify` do) costs a tenth of a verify.
        """
        first = counter - past if counter > past else 0
        last = counter + future
        if last > MAX_COUNTER:
            last = MAX_COUNTER
        # Locals instead of attribute and global look-ups inside the loop.
        inner, outer, modulus = self.inner, self.outer, self._modulus
        pack, unpack = _pack_counter, _unpack_word
        matched = -1
        nearest = 0  # |matched - counter|; only read once matched >= 0
        for candidate in range(first, last + 1):
            # The body of value(), inlined: a method call per slot would cost more than a
            # tenth of the verify.
            mac = inner.copy()
            mac.update(pack(candidate))
            outer_mac = outer.copy()
            outer_mac.update(mac.digest())
            digest = outer_mac.digest()
            if (unpack(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % modulus == wanted:
                # Rare, so the distance is only worked out here. Counters rise, so strict `<`
                # keeps the earlier of two equally near matches.
                distance = abs(candidate - counter)
                if matched < 0 or distance < nearest:
                    matched, nearest = candidate, distance
        return matched


def code_value(code: str, digits: int) -> int | None:
    """Return the integer a well-formed code stands for, or ``None`` if it is malformed.

    Well-formed is exactly ``digits`` ASCII digits once spaces are removed (apps show codes
    grouped, "123 456").

    Raises:
        TypeError: ``code`` is not a ``str``.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if " " in code:
        code = code.replace(" ", "")
    # isascii() first: isdigit() alone also accepts full-width, Arabic-Indic and superscript
    # digits, which int() would then happily convert.
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    return int(code)
