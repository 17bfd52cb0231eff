"""Attacks on the written-out window scan, the shared Match objects and the inline clock read.

The change under attack: ``TOTP.verify`` scans its window itself (the default window as a
three-counter tuple away from both ends of the counter range), hands out shared ``Match``
objects from ``RECENT_MATCHES`` (``{matched: (expected, Match)}``), ``Keyed.around`` takes the
same three-counter path and a cheaper nearest-match test, and a login check reads the usual
clock (a float in range) inline.

Each docstring names the attack. The tests marked "ONCE BROKE" are attacks that worked when
the change was first written (an int subclass's own arithmetic and comparisons followed the
value into the shared matches; a huge int clock raised OverflowError): numbers are now made
plain ints where they enter, and these tests keep it so. The others are regression guards for
attacks that did not work. Every test starts and ends with an empty ``RECENT_MATCHES``, so
that what one test plants cannot reach another module's tests.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Self, cast

import pytest

from totpcore import (
    TOTP,
    InvalidParameterError,
    InvalidTimeError,
    Match,
    MemoryStore,
    Policy,
    Reason,
    TwoFactor,
)
from totpcore._engine import RECENT_LIMIT, RECENT_MATCHES, Keyed
from totpcore.testing import FakeClock

MAX_COUNTER = 2**64 - 1
KEY = bytes(range(1, 21))
OTHER_KEY = bytes(range(101, 121))
#: Counters 1302 and 1316 share a code under this key, and nothing between them does.
REPEAT_KEY = bytes([8]) * 20
FAST = Policy(recovery_iterations=1_000)
START = 1_700_000_010  # the start of a 30-second step
#: A well-formed code KEY does not produce at the steps the tests send it near (fixed key, so
#: this holds on every run).
WRONG = "000000"


@pytest.fixture(autouse=True)
def _empty_recent_matches() -> Iterator[None]:
    """Start and end every test with no shared Match recorded."""
    RECENT_MATCHES.clear()
    yield
    RECENT_MATCHES.clear()


def reference_value(key: bytes, counter: int, digits: int, algorithm: str) -> int:
    """RFC 4226 on the stdlib hmac module: the truncated value of ``counter``."""
    digest = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, algorithm.lower())).digest()
    offset = digest[-1] & 0x0F
    modulus = int(10**digits)
    return (int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF) % modulus


def reference_verify(otp: TOTP, code: str, step: int, past: int, future: int) -> Match | None:
    """The documented rule, written plainly: the nearest matching step, ties to the earlier."""
    first, last = max(step - past, 0), min(step + future, MAX_COUNTER)
    hits = [
        counter
        for counter in range(first, last + 1)
        if reference_value(otp.key, counter, otp.digits, otp.algorithm) == int(code)
    ]
    if not hits:
        return None
    best = min(hits, key=lambda counter: (abs(counter - step), counter))
    return Match(best, best - step)


def at_step(otp: TOTP, step: int) -> int:
    """A time inside ``step`` of ``otp`` (its middle, so every period and t0 work)."""
    return otp.t0 + step * otp.period + otp.period // 2


class RecordingHash:
    """A hash object that logs the counter of every MAC computed from it or its copies."""

    def __init__(self, state: Any, log: list[int]) -> None:
        self.state, self.log = state, log
        self.block_size: int = state.block_size

    def copy(self) -> RecordingHash:
        """Copy the state; the copy logs into the same list."""
        return RecordingHash(self.state.copy(), self.log)

    def update(self, data: bytes) -> None:
        """Feed ``data``, logging it first when it is an 8-byte counter message."""
        if len(data) == 8:
            self.log.append(int.from_bytes(data, "big"))
        self.state.update(data)

    def digest(self) -> bytes:
        """Return the state's digest."""
        return bytes(self.state.digest())


class Seconds(int):
    """A well-behaved int subclass that keeps its type through arithmetic (a "unit" type)."""

    def __add__(self, other: object) -> Self:
        return type(self)(int(self) + int(other))  # type: ignore[call-overload]

    def __sub__(self, other: object) -> Self:
        return type(self)(int(self) - int(other))  # type: ignore[call-overload]

    def __floordiv__(self, other: object) -> Self:
        return type(self)(int(self) // int(other))  # type: ignore[call-overload]


class Hostile(Seconds):
    """An int subclass that claims to equal everything, hashing as the next integer."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(int(self) + 1)


class Hostile0(Seconds):
    """An int subclass that claims to equal everything, hashing as its own value."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class Index:
    """Not an int, but usable as one through ``__index__`` (as numpy scalars are)."""

    def __index__(self) -> int:
        return 1


# --- attacks that worked on the first version of the change ------------------------------


def test_int_subclass_time_cannot_poison_another_callers_offset() -> None:
    """ONCE BROKE: a hostile int ``at=`` plants a Match another caller then receives.

    ``at`` may be any int, subclasses included. Through the three-counter tuple the caller's
    own counter object becomes the matched counter and the expected counter recorded in the
    process-wide RECENT_MATCHES; an ``__eq__`` that always answers True then passes the
    ``recent[0] == counter`` test of every later verification that matches the same step. An
    innocent caller, with another key, verifying its previous step's code one step later gets
    offset 0 instead of -1. Before the change each call built its own Match from range()'s
    plain ints, so nothing one caller passed could reach another's answer.
    """
    step = START // 30
    hostile = TOTP(KEY)
    assert hostile.verify(hostile.generate(START), at=Hostile0(START)) is not None
    victim = TOTP(OTHER_KEY)
    found = victim.verify(victim.generate(START), at=START + 30)
    assert found is not None
    # Read through int(): the planted objects also claim to equal whatever they are compared to.
    assert (int(found.counter), int(found.offset)) == (step, -1)


def test_int_subclass_time_cannot_make_another_caller_match_the_wrong_step() -> None:
    """ONCE BROKE: a planted Match names the wrong step for another caller's code.

    As above, with the planted key hashing as the next step: the victim's code of step
    ``c + 1``, verified at step ``c + 1``, comes back as ``Match(c, 0)``. A caller that keeps
    the last accepted counter for replay protection (RFC 6238 §5.2) records ``c`` and would
    accept the same ``c + 1`` code a second time.
    """
    step = START // 30
    hostile = TOTP(KEY)
    assert hostile.verify(hostile.generate(START), at=Hostile(START)) is not None
    victim = TOTP(OTHER_KEY)
    found = victim.verify(victim.generate(START + 30), at=START + 30)
    assert found is not None
    # Read through int(): the planted objects also claim to equal whatever they are compared to.
    assert (int(found.counter), int(found.offset)) == (step + 1, 0)


def test_a_plain_caller_gets_a_match_of_plain_ints() -> None:
    """ONCE BROKE: another caller's int subclass leaks into a plain caller's Match.

    A well-behaved "unit" int subclass (arithmetic keeps the type) passed as ``at`` by one
    caller becomes the counter and offset of the shared Match, which the next caller, passing
    a plain int at the same step, receives: its ``counter`` and ``offset`` are ``Seconds``
    objects it never made. Before the change every Match held the plain ints of range().
    """
    first = TOTP(KEY)
    first.verify(first.generate(START), at=Seconds(START))
    second = TOTP(OTHER_KEY)
    found = second.verify(second.generate(START), at=START)
    assert found == Match(START // 30, 0)
    assert found is not None
    assert type(found.counter) is int
    assert type(found.offset) is int


def test_keyed_around_answers_a_plain_int_for_an_int_subclass_counter() -> None:
    """ONCE BROKE (low): Keyed.around's ±1 tuple returns the caller's counter object.

    The service passes ``current + drift``, the drift read from the store; a store that
    answers an int subclass (or a numpy integer, which behaves the same here) then got that
    object back as the step to mark, where the range() scan before the change (and the
    general path still) answered a plain int. Every slot of the ±1 window is checked.
    """
    keyed = Keyed(KEY, digits=6, algorithm="SHA1")
    step = START // 30
    for offset in (-1, 0, 1):
        found = keyed.around(keyed.value(step + offset), Seconds(step), 1, 1)
        assert found == step + offset
        assert type(found) is int, offset
        general = keyed.around(keyed.value(step + offset), Seconds(step), 2, 2)
        assert type(general) is int


def test_a_huge_int_clock_is_an_invalid_time() -> None:
    """ONCE BROKE (before this change too): a huge int clock overflows.

    A clock returning an int too large for a float (10**400) makes TwoFactor.verify raise
    OverflowError from ``float(now)``, not the InvalidTimeError every other out-of-range
    reading raises (a web adapter catching TotpcoreError answers it as a crash). The value is
    never used and nothing is charged; the parent of this change raised the same
    OverflowError.
    """
    service, clock = enrolled()
    before = service.store.get("alice")
    clock.now = 10**400
    with pytest.raises(InvalidTimeError):
        service.verify("alice", "123456")
    assert service.store.get("alice") == before


# --- the scan: nearest match, clipping, every object shape -------------------------------------


OBJECTS = [
    TOTP(KEY, period=1),
    TOTP(KEY, period=30, t0=1_000, digits=8),
    TOTP(OTHER_KEY, period=7, t0=5, algorithm="SHA256"),
    TOTP(OTHER_KEY + KEY, period=60, digits=7, algorithm="SHA512"),
]


@pytest.mark.parametrize("otp", OBJECTS, ids=repr)
def test_scan_matches_the_reference_near_both_ends_and_in_between(otp: TOTP) -> None:
    """Attack: a wrong slot, a wrong offset or a stale shared Match, per object shape.

    Objects with different keys, periods, t0, digits and algorithms verify, one after the
    other (so they share RECENT_MATCHES), the codes of every step within ±3 of steps 0, 1, 2,
    a middle step, 2**64-2 and 2**64-1, under the default window, other int windows and
    pairs; each answer equals the plain reference rule. Where both ends clip, the default
    window leaves its three-counter path, and the answer must not change.
    """
    windows: list[tuple[int | tuple[int, int], int, int]] = [
        (1, 1, 1),
        (0, 0, 0),
        (2, 2, 2),
        ((0, 1), 0, 1),
        ((1, 0), 1, 0),
        ((3, 2), 3, 2),
    ]
    for step in (0, 1, 2, 5_000, MAX_COUNTER - 1, MAX_COUNTER):
        at = at_step(otp, step)
        assert otp.counter_at(at) == step
        for offset in range(-3, 4):
            if not 0 <= step + offset <= MAX_COUNTER:
                continue
            code = otp.generate(at_step(otp, step + offset))
            for window, past, future in windows:
                expected = reference_verify(otp, code, step, past, future)
                assert otp.verify(code, at=at, window=window) == expected, (step, offset, window)
                # Asked again: the shared Match, if any, still measures from this step.
                assert otp.verify(code, at=at, window=window) == expected


def test_ties_and_two_matches_are_nearest_first_through_the_shared_matches() -> None:
    """Attack: the new nearest-match test (``candidate - counter < counter - matched``).

    REPEAT_KEY's counters 1302 and 1316 share a code. From each expected step between them,
    and from steps just outside, with windows that reach one, both or neither, the answer is
    the reference's: the nearer match, the earlier on a tie (step 1309, window 7). The same
    matched step is met from many expected steps in turn, so a shared Match with a stale
    offset would show; Keyed.around must agree.
    """
    otp = TOTP(REPEAT_KEY, period=1)
    keyed = Keyed(REPEAT_KEY, digits=6, algorithm="SHA1")
    code = otp.generate(1302)
    assert otp.generate(1316) == code
    assert otp.verify(code, at=1309, window=7) == Match(1302, -7)
    assert otp.verify(code, at=1310, window=(8, 6)) == Match(1316, 6)
    assert otp.verify(code, at=1308, window=(6, 8)) == Match(1302, -6)
    for step in (1300, 1301, 1303, 1309, 1315, 1316, 1317, 1302, 1309):
        for past, future in ((1, 1), (7, 7), (10, 10), (0, 7), (7, 0), (10, 3)):
            expected = reference_verify(otp, code, step, past, future)
            assert otp.verify(code, at=step, window=(past, future)) == expected
            if past == future:
                assert otp.verify(code, at=step, window=past) == expected
            counter = keyed.around(int(code), step, past, future)
            assert counter == (-1 if expected is None else expected.counter)


def test_keyed_around_clips_below_zero_and_at_the_top() -> None:
    """Attack: the ±1 path of Keyed.around at counters the service can reach near the ends.

    A learned negative drift can centre the service's window below step 0: the scan must
    clip to 0 (and find nothing when the whole window is below it), as the range() scan did.
    At the top, 2**64-2 takes the three-counter path and 2**64-1 the clipped range.
    """
    keyed = Keyed(KEY, digits=6, algorithm="SHA1")
    zero, one = keyed.value(0), keyed.value(1)
    assert keyed.around(zero, -1, 1, 1) == 0
    assert keyed.around(one, -1, 1, 1) == -1 or keyed.value(0) == one
    assert keyed.around(zero, -2, 1, 1) == -1
    assert keyed.around(zero, 0, 1, 1) == 0
    assert keyed.around(one, 0, 1, 1) == 1
    top = keyed.value(MAX_COUNTER)
    assert keyed.around(top, MAX_COUNTER - 1, 1, 1) == MAX_COUNTER
    assert keyed.around(top, MAX_COUNTER, 1, 1) == MAX_COUNTER


def test_the_shared_matches_stay_bounded_and_refill_right() -> None:
    """Attack: a stale entry surviving the clear at RECENT_LIMIT, or the record growing.

    Each step in turn is matched from itself and from the next step (two entries measured
    from different expected steps for one matched step); across several clears every answer
    equals a fresh Match and the record never passes its limit.
    """
    otp = TOTP(KEY, period=1)
    for step in range(10_000, 10_000 + 2 * RECENT_LIMIT + 3):
        code = otp.generate(step)
        for expected in (step, step + 1, step, step - 1):
            found = otp.verify(code, at=expected)
            assert found == Match(step, step - expected)
            assert found is not None
            assert type(found) is Match
            assert len(RECENT_MATCHES) <= RECENT_LIMIT
    # Float and datetime times give plain-int matches too (and plant nothing else).
    for at in (10_000.75, datetime.fromtimestamp(10_000, UTC)):
        found = otp.verify(otp.generate(9_999), at=at)
        assert found == Match(9_999, -1)
        assert found is not None
        assert (type(found.counter), type(found.offset)) == (int, int)
    assert all(type(key) is int and type(entry[0]) is int for key, entry in RECENT_MATCHES.items())


def test_threads_verifying_at_different_steps_get_their_own_offsets() -> None:
    """Attack: two threads share RECENT_MATCHES while measuring one step from different steps.

    Threads verify the same step's code at that step and at the next one (offsets 0 and -1),
    with objects of different periods, thread switches forced as often as CPython allows;
    no answer may carry the other thread's offset.
    """
    otps = [TOTP(KEY, period=1), TOTP(OTHER_KEY, period=1), TOTP(KEY, period=1, digits=8)]
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def worker(index: int) -> None:
        otp = otps[index % len(otps)]
        delay = index % 2  # half verify at the code's step, half one step later
        barrier.wait()
        for step in range(20_000, 20_150):
            code = otp.generate(step)
            found = otp.verify(code, at=step + delay)
            if found != Match(step, -delay):
                errors.append(f"{index}: {step} {found!r}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


# --- timing: the whole window, whichever slot matches ------------------------------------------


@pytest.mark.parametrize(
    ("step", "window", "computed"),
    [
        (500, 1, range(499, 502)),
        (500, (2, 3), range(498, 504)),
        (0, 1, range(2)),
        (1, 1, range(3)),
        (MAX_COUNTER - 1, 1, range(MAX_COUNTER - 2, MAX_COUNTER + 1)),
        (MAX_COUNTER, (2, 1), range(MAX_COUNTER - 2, MAX_COUNTER + 1)),
    ],
)
def test_every_slot_is_computed_whichever_slot_matches(
    step: int, window: int | tuple[int, int], computed: range
) -> None:
    """Attack: an early exit or a skipped slot that depends on which slot matched.

    For a code of each slot of the window, and for a code of none, TOTP.verify computes the
    same counters in the same order, twice (the second time the shared Match is found in
    RECENT_MATCHES, a different path after the scan); Keyed.around likewise.
    """
    otp = TOTP(KEY, period=1)
    keyed = Keyed(KEY, digits=6, algorithm="SHA1")
    past, future = (window, window) if isinstance(window, int) else window
    inner, around_inner = otp._keyed.inner, keyed.inner  # noqa: SLF001
    values = {counter: keyed.value(counter) for counter in computed}
    wrong = next(v for v in range(10**6) if v not in values.values())
    codes = [f"{values[counter]:06d}" for counter in computed] + [f"{wrong:06d}"]
    for code in codes:
        for _ in range(2):
            log: list[int] = []
            otp._keyed.inner = RecordingHash(inner, log)  # noqa: SLF001
            otp.verify(code, at=step, window=window)
            assert log == list(computed), code
        log = []
        keyed.inner = RecordingHash(around_inner, log)
        keyed.around(int(code), step, past, future)
        assert log == list(computed), code


# --- shared Match objects -----------------------------------------------------------------------


def test_a_shared_match_cannot_be_changed_by_one_holder() -> None:
    """Attack: change the Match one caller holds so that every later caller sees it.

    Attribute assignment, ``object.__setattr__``, a ``__dict__``, ``__class__`` assignment,
    item assignment and deletion are all refused; the next caller gets an equal, unchanged
    Match (the same object, shared), and the record still measures from the right step.
    """
    otp = TOTP(KEY, period=1)
    code = otp.generate(700)
    held = otp.verify(code, at=701)
    assert held == Match(700, -1)
    assert held is not None
    attempts: list[Callable[[], object]] = [
        lambda: setattr(held, "offset", 0),
        lambda: setattr(held, "counter", 701),
        lambda: object.__setattr__(held, "offset", 0),
        lambda: object.__setattr__(held, "extra", 1),
        lambda: held.__dict__,
        lambda: setattr(held, "__class__", tuple),
        lambda: cast("Any", held).__setitem__(1, 0),
        lambda: delattr(held, "offset"),
    ]
    for attempt in attempts:
        with pytest.raises((AttributeError, TypeError)):
            attempt()
    again = otp.verify(code, at=701)
    assert again == Match(700, -1)
    assert again is not None
    assert (again.counter, again.offset) == (700, -1)
    assert RECENT_MATCHES[700] == (701, Match(700, -1))


# --- type confusion: windows and codes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "error"),
    [
        (True, TypeError),
        (False, TypeError),
        (1.0, TypeError),
        (Index(), TypeError),
        ("1", TypeError),
        (None, TypeError),
        ((True, 1), TypeError),
        ((1, 1.0), TypeError),
        ([1, 1], TypeError),
        ((1,), InvalidParameterError),
        ((1, 1, 1), InvalidParameterError),
        (11, InvalidParameterError),
        (-1, InvalidParameterError),
        ((11, 0), InvalidParameterError),
        ((0, -1), InvalidParameterError),
    ],
    ids=repr,
)
def test_a_bad_window_is_refused_at_every_step(window: object, error: type[Exception]) -> None:
    """Attack: a window the checks should refuse taking the default window's fast path.

    Only the int 1 itself is the default window; True, 1.0, objects with ``__index__``,
    pairs of the wrong shape or type, and sides out of range raise, at step 0, at a middle
    step and at 2**64-1 (where the default window leaves the tuple path), with a correct, a
    wrong and a malformed code alike.
    """
    otp = TOTP(KEY, period=1)
    for step in (0, 1, 500, MAX_COUNTER - 1, MAX_COUNTER):
        for code in (otp.generate(step), WRONG, "12345", "abcdef"):
            with pytest.raises(error):
                otp.verify(code, at=step, window=window)  # type: ignore[arg-type]
    assert RECENT_MATCHES == {}


def test_an_int_subclass_window_of_one_is_the_default_window() -> None:
    """Attack: an int subclass equal to 1 skips ``is`` but must still mean ±1, nothing more."""
    otp = TOTP(KEY, period=1)
    for step in (0, 500, MAX_COUNTER):
        for offset in (-2, -1, 0, 1, 2):
            if not 0 <= step + offset <= MAX_COUNTER:
                continue
            code = otp.generate(step + offset)
            plain = otp.verify(code, at=step)
            assert otp.verify(code, at=step, window=Seconds(1)) == plain
            assert otp.verify(code, at=step, window=(Seconds(1), 1)) == plain
            assert (plain is None) == (abs(offset) > 1)


@pytest.mark.parametrize(
    "code", [b"123456", bytearray(b"123456"), 123456, None, 123456.0], ids=repr
)
def test_a_non_str_code_is_a_type_error(code: object) -> None:
    """Attack: a non-str code slipping past the inline six-digit test (or the window check)."""
    otp = TOTP(KEY, period=1)
    for window in (1, 2, (0, 1)):
        with pytest.raises(TypeError):
            otp.verify(code, at=500, window=window)  # type: ignore[arg-type]


def test_lookalike_codes_are_no_match_and_str_subclasses_are_read_as_text() -> None:
    """Attack: full-width digits, signs, underscores or a str subclass matching a code.

    A str subclass takes the checked path and reads as its text; anything that is not
    exactly ``digits`` ASCII digits (after grouping spaces) is no match.
    """

    class Text(str):
        __slots__ = ()

    otp = TOTP(KEY, period=1)
    code = otp.generate(500)
    assert otp.verify(Text(code), at=500) == Match(500, 0)
    assert otp.verify(f"{code[:3]} {code[3:]}", at=500) == Match(500, 0)
    full_width = "".join(chr(ord(digit) + 0xFEE0) for digit in code)
    for lookalike in (full_width, f"+{code[1:]}", f"{code[:3]}_{code[3:]}", f"{code}0", code[1:]):
        assert otp.verify(lookalike, at=500) is None, lookalike


# --- the service path: the clock read inline ----------------------------------------------------


class SettableClock:
    """A clock that answers whatever it is set to, and counts its readings."""

    def __init__(self, now: object) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        """Count the reading and answer the set value."""
        self.reads += 1
        return self.now  # type: ignore[return-value]


def enrolled() -> tuple[TwoFactor, SettableClock]:
    """A service on a MemoryStore with "alice" imported (KEY) at START."""
    clock = SettableClock(float(START))
    service = TwoFactor(MemoryStore(), issuer="X", policy=FAST, clock=clock)
    service.import_secret("alice", KEY)
    return service, clock


class Float(float):
    """A float subclass: not the usual clock, so it takes the full checks."""


@pytest.mark.parametrize(
    ("reading", "error"),
    [
        (True, TypeError),
        (False, TypeError),
        (Float(START), TypeError),
        (Float("nan"), TypeError),
        (Decimal(START), TypeError),
        (str(START), TypeError),
        (None, TypeError),
        (complex(START), TypeError),
        (math.nan, InvalidTimeError),
        (-math.nan, InvalidTimeError),
        (math.inf, InvalidTimeError),
        (-math.inf, InvalidTimeError),
        (-1.0, InvalidTimeError),
        (-5e-324, InvalidTimeError),
        (-1, InvalidTimeError),
        (2.0**40, InvalidTimeError),
        (2**40, InvalidTimeError),
        (2.0**63, InvalidTimeError),
        (2**64, InvalidTimeError),
        (sys.float_info.max, InvalidTimeError),
    ],
    ids=repr,
)
def test_a_bad_clock_reading_is_refused_before_anything_is_charged(
    reading: object, error: type[Exception]
) -> None:
    """Attack: a clock reading the inline fast path takes without the checks.

    Through TwoFactor.verify (the inline six-digit path), verify_request, and a grouped and
    an 8-digit code (the general path), bools, float subclasses (a NaN one too), Decimals,
    strings, NaN, infinities, negatives (-5e-324 too) and readings from 2**40 s on raise as
    before the change; nothing is charged and the clock is read once per call.
    """
    service, clock = enrolled()
    before = service.store.get("alice")
    clock.now = reading
    calls: list[Callable[[], object]] = [
        lambda: service.verify("alice", "123456"),
        lambda: service.verify_request("alice", "123456"),
        lambda: service.verify("alice", "123 456"),
        lambda: service.verify("alice", "12345678"),
    ]
    for call in calls:
        clock.reads = 0
        with pytest.raises(error):
            call()
        assert clock.reads == 1
    assert service.store.get("alice") == before


@pytest.mark.parametrize(
    "reading",
    [float(START), START, Seconds(START), 0.0, -0.0, 0, math.nextafter(2.0**40, 0.0), 2**40 - 1],
    ids=repr,
)
def test_a_good_clock_reading_is_read_once_as_a_float(reading: object) -> None:
    """Attack: an in-range reading (float, int, int subclass, -0.0, the last allowed) misread.

    Each is read once and used as its float value: a wrong code is charged as INVALID (the
    stamp in the failure log is the float reading), never raised on or accepted.
    """
    service, clock = enrolled()
    clock.now = reading
    clock.reads = 0
    verdict = service.verify("alice", WRONG)
    assert clock.reads == 1
    assert verdict.reason is Reason.INVALID
    record = service.store.get("alice")
    assert record is not None
    assert record.failure_log[-1] == float(reading)  # type: ignore[arg-type]
    assert type(record.failure_log[-1]) is float


def pending_phone(service: TwoFactor, user_id: str) -> TOTP:
    """Enable ``user_id`` until its secret gives distinct codes for steps 0 to 3; its phone.

    Setup draws a random secret; retrying until the first steps' codes differ leaves no
    verdict below to chance (two equal codes would change which step matches).
    """
    while True:
        service.enable(user_id)
        phone = TOTP.from_secret(service.begin_setup(user_id).secret)
        if len({phone.generate(30 * step) for step in range(4)}) == 4:
            return phone
        service.disable(user_id)


def test_service_default_window_at_step_zero_and_one() -> None:
    """Attack: the service's ±1 window where it leaves the three-counter path (step 0).

    With the clock in step 0 the window is clipped to steps 0 and 1: setup confirms with
    step 0's code, a login then refuses step 2's code (INVALID) and takes step 1's (a phone
    one step fast), once; at step 1 (the three-counter path) a second user confirms with
    step 0's code, and step 0 is the one marked.
    """
    clock = FakeClock(15.0)
    service = TwoFactor(MemoryStore(), issuer="X", policy=FAST, clock=clock)
    phone = pending_phone(service, "alice")
    assert service.complete_setup("alice", phone.generate(15)).reason is Reason.ACCEPTED
    assert service.verify("alice", phone.generate(60)).reason is Reason.INVALID
    assert service.verify("alice", phone.generate(30)).reason is Reason.ACCEPTED
    assert service.verify("alice", phone.generate(30)).reason is Reason.REPLAYED
    clock.set(45.0)
    bob = pending_phone(service, "bob")
    assert service.complete_setup("bob", bob.generate(0)).reason is Reason.ACCEPTED
    record = service.store.get("bob")
    assert record is not None
    assert record.last_step == 0


def test_int_subclass_options_are_stored_as_plain_ints() -> None:
    """An int subclass given as period, t0, digits or an HOTP counter is kept as a plain int.

    Options are checked once, at construction; a subclass kept as given would bring its own
    arithmetic into every step computed from it (and from there into the shared matches).
    """
    otp = TOTP(KEY, period=Seconds(30), t0=Seconds(0), digits=Seconds(6))
    assert (otp.period, otp.t0, otp.digits) == (30, 0, 6)
    assert {type(otp.period), type(otp.t0), type(otp.digits)} == {int}
    found = otp.verify(otp.generate(START), at=START)
    assert found is not None
    assert type(found.counter) is int


class FloorZero(float):
    """A float subclass whose own rounding claims every time is the epoch."""

    def __floor__(self) -> int:
        return 0


def test_float_subclass_time_is_read_as_its_plain_value() -> None:
    """Attack: a float subclass's own ``__floor__`` would pick the step.

    ``at`` is rounded down as the plain float it holds, so the step is the real one.
    """
    otp = TOTP(KEY)
    found = otp.verify(otp.generate(START), at=FloorZero(START + 0.5))
    assert found == Match(START // 30, 0)
    assert otp.counter_at(FloorZero(START + 0.5)) == START // 30


def test_an_int_clock_at_the_service_limit_is_an_invalid_time() -> None:
    """A clock answering exactly 2**40 (as an int) is past the service's last usable time."""
    service, clock = enrolled()
    clock.now = 2**40
    with pytest.raises(InvalidTimeError):
        service.verify("alice", "123456")
    clock.now = 2**40 - 1
    assert service.verify("alice", "123456").reason in {Reason.INVALID, Reason.ACCEPTED}


def test_an_int_clock_reading_checks_a_six_digit_code_as_six_digits() -> None:
    """A clock answering ints (not the inline float path) still reads a code at its length.

    The checked path builds the same check as the inline one: the user's own code is
    accepted, a wrong one refused.
    """
    service, clock = enrolled()
    phone = TOTP(KEY)
    clock.now = START + 30
    assert service.verify("alice", phone.generate(START + 30)).reason is Reason.ACCEPTED
    clock.now = START + 60
    assert service.verify("alice", WRONG).reason is Reason.INVALID
