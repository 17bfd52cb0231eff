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

__all__ = [
    "BLOCK_SIZES",
    "MAX_COUNTER",
    "PACK_COUNTER",
    "RECENT_LIMIT",
    "RECENT_MATCHES",
    "UNPACK_WORD",
    "Keyed",
    "Match",
    "code_value",
    "new_match",
    "remember_match",
]

# Pre-bound packers: the counter is an 8-byte big-endian message (RFC 4226 §5.2) and dynamic
# truncation reads 4 bytes big-endian at an offset (§5.3).
PACK_COUNTER: Callable[[int], bytes] = struct.Struct(">Q").pack
UNPACK_WORD: Callable[[bytes, int], tuple[int]] = struct.Struct(">I").unpack_from
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

#: The match last handed out for each matched counter, with the expected counter it was
#: measured from: ``{matched: (expected, Match)}``. At any moment every TOTP user's correct
#: code matches one of a few time steps, so a handful of entries serve every user; building
#: and freeing a fresh ``Match`` costs a tenth of a verify, a look-up here a hundredth. A
#: ``Match`` is immutable, so handing one instance to many callers is safe; a dict's get and
#: set are atomic, so threads need no lock (a race builds one match twice, no more).
RECENT_MATCHES: dict[int, tuple[int, Match]] = {}
#: Entries kept before :func:`remember_match` starts afresh: HOTP users, or verifications at
#: arbitrary ``at=`` times, would otherwise grow the dict without bound.
RECENT_LIMIT = 64


def remember_match(matched: int, expected: int) -> Match:
    """Build ``Match(matched, matched - expected)`` and record it in :data:`RECENT_MATCHES`.

    Hot paths look in :data:`RECENT_MATCHES` themselves (an entry whose expected counter is
    ``expected`` is the answer) and come here only on a miss.
    """
    match = new_match((matched, matched - expected))
    if len(RECENT_MATCHES) >= RECENT_LIMIT:
        RECENT_MATCHES.clear()
    RECENT_MATCHES[matched] = (expected, match)
    return match


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
        modulus: ``10 ** digits``, which reduces the truncated value to a code.
    """

    __slots__ = ("_template", "algorithm", "digits", "inner", "key", "modulus", "outer")

    key: bytes
    digits: int
    algorithm: str
    inner: Any
    outer: Any
    modulus: int
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
        self.modulus = 10**digits
        # %-formatting: the fastest zero-padding in CPython.
        self._template = _TEMPLATES.get(digits) or f"%0{digits}d"

    def value(self, counter: int) -> int:
        """Return the truncated HOTP value of ``counter`` (0 to 2**64-1, not checked)."""
        inner = self.inner.copy()
        inner.update(PACK_COUNTER(counter))
        outer = self.outer.copy()
        outer.update(inner.digest())
        digest = outer.digest()
        return (UNPACK_WORD(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % self.modulus

    def code(self, counter: int) -> str:
        """Return the code of ``counter`` (0 to 2**64-1, not checked), zero-padded."""
        # The body of value(), inlined: generate() is one HMAC, so the extra call would be a
        # few percent of it.
        inner = self.inner.copy()
        inner.update(PACK_COUNTER(counter))
        outer = self.outer.copy()
        outer.update(inner.digest())
        digest = outer.digest()
        value = (UNPACK_WORD(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % self.modulus
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
        if past == 1 == future and type(counter) is int and 0 < counter < MAX_COUNTER:
            # The usual ±1 away from both ends of the counter range: three counters as a
            # tuple, where building and running a range() costs a twentieth of a verify.
            # Only for a plain int: range() turns anything else into plain ints (or
            # refuses it), and the matched counter returned must be one.
            candidates: tuple[int, ...] | range = (counter - 1, counter, counter + 1)
        else:
            first = counter - past if counter > past else 0
            last = counter + future
            if last > MAX_COUNTER:
                last = MAX_COUNTER
            candidates = range(first, last + 1)
        # Locals instead of attribute and global look-ups inside the loop.
        inner, outer, modulus = self.inner, self.outer, self.modulus
        pack, unpack = PACK_COUNTER, UNPACK_WORD
        matched = -1
        for candidate in candidates:
            # The body of value(), inlined: a method call per slot would cost more than a
            # tenth of the verify.
            mac = inner.copy()
            mac.update(pack(candidate))
            outer_mac = outer.copy()
            outer_mac.update(mac.digest())
            digest = outer_mac.digest()
            # A later match replaces an earlier one only if strictly nearer to ``counter``.
            # Candidates rise, so with matched < candidate that is exactly
            # ``candidate - counter < counter - matched`` (a candidate at or before
            # ``counter`` always wins, one after it wins against a farther earlier match
            # only); ties keep the earlier one.
            if (unpack(digest, digest[-1] & 0x0F)[0] & 0x7FFFFFFF) % modulus == wanted and (
                matched < 0 or candidate - counter < counter - matched
            ):
                matched = candidate
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
