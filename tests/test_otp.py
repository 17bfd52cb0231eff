"""HOTP and TOTP: options, times, windows, code input rules, and what never leaks."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from totpcore import (
    HOTP,
    MAX_LOOK_AHEAD,
    MAX_WINDOW,
    TOTP,
    InvalidParameterError,
    InvalidSecretError,
    InvalidTimeError,
    Match,
    encode_secret,
    hotp,
    parse_uri,
)
from totpcore._checks import HASHES
from totpcore._engine import RECENT_LIMIT, RECENT_MATCHES, Keyed, code_value

MAX_COUNTER = 2**64 - 1
#: The RFC 4226 Appendix D key, ASCII "12345678901234567890".
RFC4226_KEY = b"12345678901234567890"
#: A fixed key chosen so that its codes repeat within a window early on (counters 1302 and
#: 1316 share a code, and nothing between them does): the searches that use it stay short.
REPEAT_KEY = bytes([8]) * 20


def reference_hotp(key: bytes, counter: int, digits: int = 6, algorithm: str = "sha1") -> str:
    """RFC 4226 written the plain way, on the stdlib hmac module (an independent path)."""
    digest = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, algorithm)).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def first_repeat(otp: HOTP, accept: Callable[[int], bool]) -> tuple[int, int]:
    """Return the first repeated code's counters ``(a, b)``, searching up from counter 0.

    ``a < b`` share a code, no counter between them produces it, and the gap ``b - a`` passes
    ``accept``.
    """
    latest: dict[str, int] = {}
    for counter in range(200_000):
        code = otp.generate(counter)
        earlier = latest.get(code)
        if earlier is not None and accept(counter - earlier):
            return earlier, counter
        latest[code] = counter
    raise AssertionError("no repeated code in range; pick another key")


class RecordingHash:
    """A hash object that logs the counter of every MAC computed from it or its copies.

    The engine feeds a copy of the inner pad state the 8-byte counter (RFC 4226 §5.2); no
    other message it hashes is 8 bytes long (the pads are a block, the inner digest 20 or more).
    """

    def __init__(self, state: Any, log: list[int]) -> None:
        self.state, self.log = state, log
        self.block_size: int = state.block_size

    def copy(self) -> RecordingHash:
        """Copy the state; the copy logs into the same list."""
        return RecordingHash(self.state.copy(), self.log)

    def update(self, data: bytes) -> None:
        """Feed ``data`` to the state, logging it first if it is a counter."""
        if len(data) == 8:
            self.log.append(int.from_bytes(data, "big"))
        self.state.update(data)

    def digest(self) -> bytes:
        """Return the state's digest."""
        return bytes(self.state.digest())


def nearest_match(values: dict[int, int], wanted: int, expected: int) -> Match | None:
    """The matching rule written plainly, as the expected result of a verify.

    Of the counters whose value is ``wanted``: the one with the smallest ``|offset|`` from
    ``expected``, and the earlier of two equally near ones; ``None`` if there is none.
    """
    matching = [counter for counter, value in values.items() if value == wanted]
    if not matching:
        return None
    best = min(matching, key=lambda counter: (abs(counter - expected), counter))
    return Match(best, best - expected)


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "Sha256", "SHA512"])
def test_algorithm_any_case_is_normalised(key: bytes, algorithm: str) -> None:
    """Algorithm names are case-insensitive and stored in canonical upper case."""
    assert TOTP(key, algorithm=algorithm).algorithm == algorithm.upper()


@given(key=st.binary(min_size=16, max_size=200), counter=st.integers(0, MAX_COUNTER))
def test_long_and_short_keys_match_stdlib_hmac(key: bytes, counter: int) -> None:
    """Keys longer than the hash block (hashed first, RFC 2104) and shorter ones both agree."""
    for algorithm in ("sha1", "sha256", "sha512"):
        expected = reference_hotp(key, counter, 8, algorithm)
        assert HOTP(key, digits=8, algorithm=algorithm).generate(counter) == expected


BAD_OPTIONS: dict[str, tuple[dict[str, Any], type[Exception]]] = {
    "digits 5": ({"digits": 5}, InvalidParameterError),
    "digits 9": ({"digits": 9}, InvalidParameterError),
    "digits str": ({"digits": "6"}, TypeError),
    "digits bool": ({"digits": True}, TypeError),
    "digits float": ({"digits": 6.0}, TypeError),
    "algorithm md5": ({"algorithm": "MD5"}, InvalidParameterError),
    "algorithm SHA-1": ({"algorithm": "SHA-1"}, InvalidParameterError),
    "algorithm full-width": ({"algorithm": "\uff33\uff28\uff21\uff11"}, InvalidParameterError),
    "algorithm bytes": ({"algorithm": b"SHA1"}, TypeError),
    "period 0": ({"period": 0}, InvalidParameterError),
    "period negative": ({"period": -30}, InvalidParameterError),
    "period too large": ({"period": 2**32}, InvalidParameterError),
    "period float": ({"period": 30.0}, TypeError),
    "t0 negative": ({"t0": -1}, InvalidParameterError),
    "t0 float": ({"t0": 0.5}, TypeError),
    "enforce_key_length not bool": ({"enforce_key_length": 0}, TypeError),
}


@pytest.mark.parametrize(("options", "error"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_options_are_refused_at_construction(
    key: bytes, options: dict[str, Any], error: type[Exception]
) -> None:
    """Each out-of-range option raises InvalidParameterError, each wrong type TypeError."""
    with pytest.raises(error) as caught:
        TOTP(key, **options)
    assert key.hex() not in str(caught.value)


def test_key_rules() -> None:
    """Keys under 128 bits need enforce_key_length=False; empty or non-bytes keys never work."""
    with pytest.raises(InvalidSecretError, match="128"):
        TOTP(bytes(15))
    with pytest.raises(InvalidSecretError, match="128"):
        HOTP.from_secret("JBSWY3DPEHPK3PXP")  # the classic 80-bit demo secret
    assert TOTP(bytes(10), enforce_key_length=False).digits == 6
    assert HOTP.from_secret("JBSWY3DPEHPK3PXP", enforce_key_length=False).generate(0)
    with pytest.raises(InvalidSecretError):
        TOTP(b"", enforce_key_length=False)
    with pytest.raises(TypeError):
        TOTP("JBSWY3DPEHPK3PXP")  # type: ignore[arg-type]


def test_bytearray_key_is_copied(key: bytes) -> None:
    """A mutable key is copied, so changing the caller's buffer cannot change the object."""
    buffer = bytearray(key)
    otp = TOTP(buffer)
    buffer[0] ^= 0xFF
    assert otp.key == key
    assert otp == TOTP(key)


def test_objects_are_frozen(key: bytes) -> None:
    """HOTP, TOTP and Match cannot be changed after construction."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        TOTP(key).digits = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        HOTP(key).key = b"x" * 20
    with pytest.raises(AttributeError):
        Match(1, 0).offset = 3  # type: ignore[misc]


def test_match_is_a_true_named_pair() -> None:
    """A Match is always true (even step 0, offset 0), so ``if match:`` can never misread one.

    Match is a named tuple: it unpacks as ``(counter, offset)`` and equals that pair.
    """
    match = TOTP(bytes(range(20))).verify(TOTP(bytes(range(20))).generate(0), at=0)
    assert match == Match(0, 0)
    assert bool(match) is True
    counter, offset = match
    assert (counter, offset) == (match.counter, match.offset) == (0, 0)
    assert type(match) is Match


def test_objects_are_values(key: bytes) -> None:
    """Equal options make equal, equally hashed objects; pickling rebuilds and re-checks them.

    enforce_key_length is not part of the value (it only decides what construction accepts),
    and fields cannot be deleted either.
    """
    import pickle

    totp = TOTP(key, digits=8, period=60, t0=30)
    assert totp == TOTP(bytearray(key), digits=8, period=60, t0=30, enforce_key_length=False)
    assert hash(totp) == hash(TOTP(key, digits=8, period=60, t0=30))
    assert totp != TOTP(key, digits=8, period=60)
    assert totp != HOTP(key, digits=8)
    assert len({HOTP(key), HOTP(key), HOTP(key, algorithm="sha256")}) == 2
    for otp in (totp, HOTP(key, algorithm="SHA512")):
        copy = pickle.loads(pickle.dumps(otp))
        assert copy == otp
        assert copy.generate(59) == otp.generate(59)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del totp.period
    with pytest.raises(AttributeError):
        totp.extra = 1  # type: ignore[attr-defined]


def test_key_never_in_repr_or_str(key: bytes) -> None:
    """Neither the key bytes nor its base32 or hex form appear in repr() or str()."""
    secret = encode_secret(key)
    for otp in (TOTP(key), HOTP(key)):
        for text in (repr(otp), str(otp)):
            assert secret not in text
            assert key.hex() not in text
            assert repr(key) not in text
            assert "key=" not in text


def test_equal_options_are_equal_and_hashable(key: bytes) -> None:
    """Value semantics: same key and options compare equal and hash alike."""
    assert TOTP(key) == TOTP(key, algorithm="sha1")
    assert hash(TOTP(key)) == hash(TOTP(key))
    assert TOTP(key) != TOTP(key, digits=8)


# --- times ---------------------------------------------------------------------------------


def test_steps_use_floor_division(key: bytes) -> None:
    """A step starts exactly on its boundary: 59.999 is step 1, 60 is step 2."""
    otp = TOTP(key)
    assert otp.counter_at(0) == 0
    assert otp.counter_at(29) == 0
    assert otp.counter_at(30) == 1
    assert otp.counter_at(59.999) == 1
    assert otp.counter_at(60.0) == 2
    assert otp.counter_at(-0.0) == 0


def test_datetime_is_exact_and_zone_independent(key: bytes) -> None:
    """Aware datetimes in any zone give the same step as the same instant in UTC."""
    otp = TOTP(key)
    instant = datetime(2033, 5, 18, 3, 33, 19, 999_999, tzinfo=UTC)
    elsewhere = instant.astimezone(timezone(timedelta(hours=-7, minutes=-30)))
    unix = (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    assert otp.counter_at(instant) == otp.counter_at(elsewhere) == unix // 30
    assert otp.generate(elsewhere) == otp.generate(unix)


def test_t0_and_period_shift_the_steps(key: bytes) -> None:
    """Step n covers t0 + n*period .. t0 + (n+1)*period - 1 (RFC 6238 §4.2)."""
    otp = TOTP(key, period=60, t0=1000)
    assert otp.counter_at(1000) == 0
    assert otp.counter_at(1059) == 0
    assert otp.counter_at(1060) == 1
    assert otp.generate(1000 + 60 * 7 + 5) == reference_hotp(key, 7)
    assert TOTP(key, period=1).generate(12345) == reference_hotp(key, 12345)


def test_times_past_2038_and_2106(key: bytes) -> None:
    """Times past 2**31 and 2**32 seconds work (no 32-bit truncation)."""
    otp = TOTP(key)
    for at in (2**31 + 5, 2**32 + 5, 20_000_000_000):
        assert otp.generate(at) == reference_hotp(key, at // 30)


def test_largest_step(key: bytes) -> None:
    """The last step RFC 4226's 64-bit counter can hold works; the next second is refused."""
    otp = TOTP(key, period=1)
    assert otp.generate(MAX_COUNTER) == reference_hotp(key, MAX_COUNTER)
    match = otp.verify(otp.generate(MAX_COUNTER), at=MAX_COUNTER, window=1)
    assert match == Match(MAX_COUNTER, 0)
    with pytest.raises(InvalidTimeError):
        otp.generate(MAX_COUNTER + 1)


BAD_TIMES: dict[str, tuple[object, type[Exception]]] = {
    "nan": (math.nan, InvalidTimeError),
    "inf": (math.inf, InvalidTimeError),
    "-inf": (-math.inf, InvalidTimeError),
    "negative int": (-1, InvalidTimeError),
    "negative float": (-0.5, InvalidTimeError),
    "naive datetime": (datetime(2030, 1, 1), InvalidTimeError),
    "aware datetime before 1970": (
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        InvalidTimeError,
    ),
    "str": ("1700000000", TypeError),
    "bool": (True, TypeError),
    "Decimal": (Decimal(1700000000), TypeError),
    "None for generate": (None, TypeError),
}


@pytest.mark.parametrize(("at", "error"), BAD_TIMES.values(), ids=BAD_TIMES.keys())
def test_bad_times_are_refused(key: bytes, at: object, error: type[Exception]) -> None:
    """Unusable times raise InvalidTimeError (a ValueError); wrong types raise TypeError."""
    otp = TOTP(key)
    with pytest.raises(error):
        otp.generate(at)  # type: ignore[arg-type]
    with pytest.raises(error):
        otp.counter_at(at)  # type: ignore[arg-type]
    if at is not None:
        with pytest.raises(error):
            otp.verify("123456", at=at)  # type: ignore[arg-type]


def test_time_before_t0_is_refused(key: bytes) -> None:
    """A time before t0 has no step: InvalidTimeError, also when verifying at 'now'."""
    otp = TOTP(key, t0=4_000_000_000)
    with pytest.raises(InvalidTimeError, match="t0"):
        otp.generate(3_999_999_999)
    with pytest.raises(InvalidTimeError, match="t0"):
        otp.verify("123456")
    with pytest.raises(InvalidTimeError, match="t0"):
        otp.now()


def test_now_and_default_verify_use_the_system_clock(key: bytes) -> None:
    """now() is a valid current code, and verify() without 'at' accepts it."""
    otp = TOTP(key)
    match = otp.verify(otp.now())
    assert match is not None
    assert match.offset in (0, -1)  # -1 only if a step boundary passed in between


# --- windows -------------------------------------------------------------------------------


def test_window_offsets(key: bytes) -> None:
    """Window 1 accepts the previous, current and next step, reporting each offset."""
    otp = TOTP(key)
    at = 1_700_000_000
    step = otp.counter_at(at)
    for offset in (-1, 0, 1):
        match = otp.verify(otp.generate(at + 30 * offset), at=at)
        assert match == Match(step + offset, offset)
    for offset in (-2, 2):
        assert otp.verify(otp.generate(at + 30 * offset), at=at) is None


def test_asymmetric_window(key: bytes) -> None:
    """(past, future) windows: (2, 0) takes two old steps but no future one."""
    otp = TOTP(key)
    at = 1_700_000_000
    assert otp.verify(otp.generate(at - 60), at=at, window=(2, 0)) is not None
    assert otp.verify(otp.generate(at + 30), at=at, window=(2, 0)) is None
    assert otp.verify(otp.generate(at + 30), at=at, window=(0, 1)) is not None
    assert otp.verify(otp.generate(at - 30), at=at, window=0) is None


def test_window_at_the_start_of_time(key: bytes) -> None:
    """At t=0 the window has no negative steps to look at, and step 0 still matches."""
    otp = TOTP(key)
    assert otp.verify(otp.generate(0), at=0, window=MAX_WINDOW) == Match(0, 0)


def test_window_cap(key: bytes) -> None:
    """The documented cap is accepted; one more step is refused."""
    otp = TOTP(key)
    at = 1_700_000_000
    far = otp.generate(at - 30 * MAX_WINDOW)
    assert otp.verify(far, at=at, window=MAX_WINDOW) is not None
    assert otp.verify(far, at=at, window=(MAX_WINDOW, 0)) is not None
    for window in (MAX_WINDOW + 1, (MAX_WINDOW + 1, 0), (0, MAX_WINDOW + 1)):
        with pytest.raises(InvalidParameterError):
            otp.verify(far, at=at, window=window)


BAD_WINDOWS: dict[str, tuple[object, type[Exception]]] = {
    "negative": (-1, InvalidParameterError),
    "negative side": ((1, -1), InvalidParameterError),
    "triple": ((1, 1, 1), InvalidParameterError),
    "single": ((1,), InvalidParameterError),
    "bool": (True, TypeError),
    "float": (1.0, TypeError),
    "list": ([1, 1], TypeError),
    "str side": ((1, "1"), TypeError),
    "None": (None, TypeError),
}


@pytest.mark.parametrize(("window", "error"), BAD_WINDOWS.values(), ids=BAD_WINDOWS.keys())
def test_bad_windows(key: bytes, window: object, error: type[Exception]) -> None:
    """Malformed windows are refused, even when the code itself is malformed too."""
    otp = TOTP(key)
    for code in (otp.generate(1_700_000_000), "x"):
        with pytest.raises(error):
            otp.verify(code, at=1_700_000_000, window=window)  # type: ignore[arg-type]


def test_whole_window_is_always_computed(key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: every slot of the window is computed even when the first one matches.

    The SHA1 constructor the engine looks up is swapped for one that records the counter of
    every MAC computed: a verifier that stopped at the first match would record 1 counter for
    the window here instead of 3.
    """
    log: list[int] = []
    monkeypatch.setitem(HASHES, "SHA1", lambda data=b"": RecordingHash(hashlib.sha1(data), log))
    otp = TOTP(key)
    at = 1_700_000_000
    step = otp.counter_at(at)
    assert otp.verify(otp.generate(at - 30), at=at) == Match(step - 1, -1)
    assert log == [step - 1, step - 1, step, step + 1]  # generate, then the whole window


def test_nearest_match_wins_rfc4226_key() -> None:
    """Of two matches, the exact step wins over a later one (RFC 4226 key, steps 153567/9).

    Steps 153567 and 153569 share code 468457: verifying it at step 153567 with window 2 is
    the exact step (offset 0), not the later twin at +2.
    """
    otp = TOTP(RFC4226_KEY)
    assert otp.generate(153567 * 30) == otp.generate(153569 * 30) == "468457"
    assert otp.generate(153568 * 30) != "468457"
    assert otp.verify("468457", at=153567 * 30 + 5, window=2) == Match(153567, 0)
    assert otp.verify("468457", at=153569 * 30 + 5, window=2) == Match(153569, 0)


def test_tie_goes_to_the_earlier_step() -> None:
    """Matches at offsets -k and +k and none nearer: the earlier step (offset -k) wins."""
    earlier, later = first_repeat(
        HOTP(REPEAT_KEY), lambda gap: gap % 2 == 0 and gap <= 2 * MAX_WINDOW
    )
    otp = TOTP(REPEAT_KEY)
    middle, k = (earlier + later) // 2, (later - earlier) // 2
    code = otp.generate(earlier * 30)
    assert otp.generate(later * 30) == code
    assert all(otp.generate(step * 30) != code for step in range(earlier + 1, later))
    # Window k reaches exactly earlier .. later, so those are the only two matches.
    for at in (middle * 30, middle * 30 + 29):
        assert otp.verify(code, at=at, window=k) == Match(earlier, -k)


def test_nearer_match_wins_on_either_side() -> None:
    """Of two matches in the window, the nearer one wins on whichever side it lies.

    A nearer past step beats a farther future one, and a nearer future step beats a farther
    past one.
    """
    earlier, later = first_repeat(HOTP(REPEAT_KEY), lambda gap: 3 <= gap <= 2 * MAX_WINDOW - 2)
    otp = TOTP(REPEAT_KEY)
    code = otp.generate(earlier * 30)
    winners = set()
    for step in range(max(earlier, later - MAX_WINDOW), min(later, earlier + MAX_WINDOW) + 1):
        # An asymmetric window that reaches exactly earlier .. later: two matches, no more.
        past, future = step - earlier, later - step
        nearest = earlier if past <= future else later
        assert otp.verify(code, at=step * 30, window=(past, future)) == Match(
            nearest, nearest - step
        )
        winners.add(nearest)
    assert winners == {earlier, later}  # both the past-wins and the future-wins cases ran


@given(
    key=st.binary(min_size=16, max_size=100),
    step=st.one_of(st.integers(0, 2**40), st.integers(MAX_COUNTER - 2 * MAX_WINDOW, MAX_COUNTER)),
    past=st.integers(0, MAX_WINDOW),
    future=st.integers(0, MAX_WINDOW),
    slot=st.integers(0, 2 * MAX_WINDOW),
    digits=st.integers(1, 2),
)
def test_match_is_the_nearest_matching_step(
    key: bytes, step: int, past: int, future: int, slot: int, digits: int
) -> None:
    """Property: the match is the matching step nearest the expected one, earlier on a tie.

    The expected result is worked out slot by slot with hotp().

    Checked on 6-digit codes through TOTP.verify, where a second match is rare, and on values
    cut to 1 or 2 digits through the engine's window scan (Keyed.around, which takes any digit
    count), where most windows hold several matches, so ties and near-versus-far choices come
    up in every run. The code is always one of the window's own, so there is at least one
    match.
    """
    counters = range(max(step - past, 0), min(step + future, MAX_COUNTER) + 1)
    target = counters[slot % len(counters)]
    # hotp() at 8 digits is the 31-bit value mod 10**8; mod 10**d of that is the d-digit value.
    full = {counter: int(hotp(key, counter, digits=8)) for counter in counters}

    six = {counter: value % 10**6 for counter, value in full.items()}
    code = f"{six[target]:06d}"
    found = TOTP(key, period=1).verify(code, at=step, window=(past, future))
    assert found == nearest_match(six, six[target], step)

    short = Keyed(key, digits=digits, algorithm="SHA1")
    values = {counter: value % 10**digits for counter, value in full.items()}
    wanted = values[target]
    nearest = nearest_match(values, wanted, step)
    assert nearest is not None
    assert short.around(wanted, step, past, future) == nearest.counter


def test_engine_scans_agree() -> None:
    """TOTP.verify's written-out window scan and Keyed.around give the same, right answer.

    TOTP.verify carries its own copy of the scan (a call less on the hot path); both are
    checked against the plain rule for every window shape from (0, 0) to (10, 10) and every
    expected step around a repeated code (REPEAT_KEY's counters 1302 and 1316), so that one
    match, two matches (nearer past, nearer future, a tie) and no match all come up. The same
    matched counter is met from many expected steps in turn, so a reused Match with a stale
    offset would show too.
    """
    otp = TOTP(REPEAT_KEY, period=1)
    keyed = Keyed(REPEAT_KEY, digits=6, algorithm="SHA1")
    code = otp.generate(1302)
    assert otp.generate(1316) == code
    span = range(1302 - MAX_WINDOW - 2, 1316 + MAX_WINDOW + 3)
    values = {counter: keyed.value(counter) for counter in span}
    outcomes = set()
    for step in range(1302 - MAX_WINDOW - 1, 1316 + MAX_WINDOW + 2):
        for past in range(MAX_WINDOW + 1):
            for future in range(MAX_WINDOW + 1):
                window = {c: v for c, v in values.items() if step - past <= c <= step + future}
                expected = nearest_match(window, int(code), step)
                found = otp.verify(code, at=step, window=(past, future))
                assert found == expected, (step, past, future)
                if past == future:  # the int form, and the default window's own path
                    assert otp.verify(code, at=step, window=past) == expected
                    if past == 1:
                        assert otp.verify(code, at=step) == expected
                assert keyed.around(int(code), step, past, future) == (
                    -1 if expected is None else expected.counter
                )
                outcomes.add(None if found is None else found.offset == 0)
    assert outcomes == {None, True, False}


@pytest.mark.parametrize(
    ("step", "past", "future", "computed"),
    [
        (1, 5, 1, range(3)),
        (MAX_COUNTER - 1, 1, 5, range(MAX_COUNTER - 2, MAX_COUNTER + 1)),
        (0, 1, 1, range(2)),
        (1, 1, 1, range(3)),
        (MAX_COUNTER - 1, 1, 1, range(MAX_COUNTER - 2, MAX_COUNTER + 1)),
        (MAX_COUNTER, 1, 1, range(MAX_COUNTER - 1, MAX_COUNTER + 1)),
    ],
    ids=[
        "clipped at 0",
        "clipped at 2**64-1",
        "default window at 0",
        "default window at 1",
        "default window below 2**64-1",
        "default window at 2**64-1",
    ],
)
def test_totp_verify_computes_the_clipped_window_whole(
    key: bytes, step: int, past: int, future: int, computed: range
) -> None:
    """Both scans compute every counter of the window, clipped to 0 .. 2**64-1.

    TOTP.verify's own scan and Keyed.around, through the general path and the default
    window's (three counters, taken only away from both ends). The code is the first
    counter's, so an early exit would show as a shorter log.
    """
    otp = TOTP(key, period=1)
    code = otp.generate(computed[0])
    inner = otp._keyed.inner  # noqa: SLF001
    windows: list[int | tuple[int, int]] = [(past, future)]
    if past == future == 1:
        windows.append(1)  # the default window takes its own path
    for window in windows:
        log: list[int] = []
        otp._keyed.inner = RecordingHash(inner, log)  # noqa: SLF001
        assert otp.verify(code, at=step, window=window) == Match(computed[0], computed[0] - step)
        assert log == list(computed)
        keyed = Keyed(key, digits=6, algorithm="SHA1")
        log = []
        keyed.inner = RecordingHash(keyed.inner, log)
        assert keyed.around(int(code), step, past, future) == computed[0]
        assert log == list(computed)


def test_recent_matches_stay_bounded_and_right() -> None:
    """Reused Match objects: the same value as a fresh one, and the record stays small.

    Verifying at many different steps (as a service does over hours, or callers passing
    ``at=``) never lets RECENT_MATCHES pass RECENT_LIMIT entries, and a repeat at the same
    step hands back an equal Match whose offset is measured from that step.
    """
    otp = TOTP(RFC4226_KEY, period=1)
    for step in range(1_000, 1_000 + 3 * RECENT_LIMIT):
        code = otp.generate(step - 1)
        first = otp.verify(code, at=step)
        again = otp.verify(code, at=step)
        assert first == again == Match(step - 1, -1)
        assert type(first) is Match
        assert len(RECENT_MATCHES) <= RECENT_LIMIT
    # The same step matched from the next step on: a different offset, never the stale one.
    assert otp.verify(otp.generate(5_000), at=5_000) == Match(5_000, 0)
    assert otp.verify(otp.generate(5_000), at=5_001) == Match(5_000, -1)
    assert otp.verify(otp.generate(5_000), at=5_000) == Match(5_000, 0)


# --- HOTP ----------------------------------------------------------------------------------


def test_hotp_look_ahead(key: bytes) -> None:
    """look_ahead accepts later counters (RFC 4226 §7.4) but never earlier ones."""
    otp = HOTP(key)
    assert otp.verify(otp.generate(15), 10, look_ahead=5) == Match(15, 5)
    assert otp.verify(otp.generate(16), 10, look_ahead=5) is None
    assert otp.verify(otp.generate(9), 10, look_ahead=5) is None
    assert otp.verify(otp.generate(10), 10) == Match(10, 0)


def test_hotp_lowest_matching_counter_wins() -> None:
    """Of two counters in the look-ahead that produce the code, the lowest one wins.

    So the server's counter is not pushed past slots the token has not used yet.
    """
    otp = HOTP(REPEAT_KEY)
    earlier, later = first_repeat(otp, lambda gap: gap <= MAX_LOOK_AHEAD)
    code = otp.generate(earlier)
    assert otp.generate(later) == code
    # No counter below `earlier` within MAX_LOOK_AHEAD of it shares the code (the search
    # would have stopped there), so `earlier` is the lowest match in each of these windows.
    for counter in (earlier, max(later - MAX_LOOK_AHEAD, 0)):
        found = otp.verify(code, counter, look_ahead=MAX_LOOK_AHEAD)
        assert found == Match(earlier, earlier - counter)


def test_hotp_counter_limits(key: bytes) -> None:
    """Counters run 0 .. 2**64-1; the look-ahead stops at the last one instead of wrapping."""
    otp = HOTP(key)
    assert otp.generate(0) == reference_hotp(key, 0)
    last = otp.generate(MAX_COUNTER)
    assert otp.verify(last, MAX_COUNTER - 1, look_ahead=MAX_LOOK_AHEAD) == Match(MAX_COUNTER, 1)
    assert hotp(key, MAX_COUNTER) == last
    for counter in (-1, MAX_COUNTER + 1):
        with pytest.raises(InvalidParameterError):
            otp.generate(counter)
        with pytest.raises(InvalidParameterError):
            otp.verify(last, counter)
    for counter_type in ("1", 1.0, True):
        with pytest.raises(TypeError):
            otp.generate(counter_type)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("look_ahead", "error"),
    [(-1, InvalidParameterError), (MAX_LOOK_AHEAD + 1, InvalidParameterError), ("1", TypeError)],
)
def test_hotp_bad_look_ahead(key: bytes, look_ahead: object, error: type[Exception]) -> None:
    """look_ahead is an int from 0 to the documented cap."""
    with pytest.raises(error):
        HOTP(key).verify("123456", 0, look_ahead=look_ahead)  # type: ignore[arg-type]


def test_hotp_function_refuses_empty_key_only() -> None:
    """hotp() is the bare primitive: short keys work (vectors), an empty one does not."""
    assert hotp(b"\x01", 0) == reference_hotp(b"\x01", 0)
    with pytest.raises(InvalidSecretError):
        hotp(b"", 0)


# --- code input ----------------------------------------------------------------------------


def _code_with_leading_zero(otp: TOTP) -> tuple[int, str]:
    """Return a time and its code where the code starts with 0, to test lost-zero inputs."""
    for step in range(100_000):
        code = otp.generate(step * 30)
        if code.startswith("0"):
            return step * 30, code
    raise AssertionError("no code with a leading zero found")


def test_grouped_codes_are_accepted(key: bytes) -> None:
    """Codes typed the way apps show them ("012 345") or with stray spaces still match."""
    otp = TOTP(key)
    at, code = _code_with_leading_zero(otp)
    for typed in (code, f"{code[:3]} {code[3:]}", f" {code} ", " ".join(code)):
        assert otp.verify(typed, at=at, window=0) is not None


FULL_WIDTH = str.maketrans(
    "0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"
)
ARABIC_INDIC = str.maketrans(
    "0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
)
SUPERSCRIPT = str.maketrans(
    "0123456789", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)

MALFORMED_CODES = {
    "leading zero dropped": lambda c: c[1:],
    "extra leading zero": lambda c: "0" + c,
    "plus sign": lambda c: "+" + c[1:],
    "minus sign": lambda c: "-" + c[1:],
    "underscore": lambda c: f"{c[:3]}_{c[3:]}",
    "hyphen": lambda c: f"{c[:3]}-{c[3:]}",
    "letter": lambda c: c[:-1] + "O",
    "full-width digits": lambda c: c.translate(FULL_WIDTH),
    "Arabic-Indic digits": lambda c: c.translate(ARABIC_INDIC),
    "superscript digits": lambda c: c.translate(SUPERSCRIPT),
    "embedded newline": lambda c: f"{c[:3]}\n{c[3:]}",
    "trailing newline": lambda c: c + "\n",
    "tab": lambda c: f"{c[:3]}\t{c[3:]}",
    "non-breaking space": lambda c: f"{c[:3]}\u00a0{c[3:]}",
    "decimal point": lambda c: c[1:] + ".0",
    "empty": lambda c: "",
    "too long": lambda c: c + "0",
    "NUL": lambda c: c + "\x00",
}


@pytest.mark.parametrize("mangle", MALFORMED_CODES.values(), ids=MALFORMED_CODES.keys())
def test_malformed_codes_never_match_and_never_raise(key: bytes, mangle: Any) -> None:
    """Anything but digits-and-spaces of the right length is no match, not an exception.

    Each mangled form is one that a lenient int() or isdigit() parse would accept as the
    right number.
    """
    for otp_factory in (TOTP, HOTP):
        otp = TOTP(key)
        at, code = _code_with_leading_zero(otp)
        typed = mangle(code)
        if otp_factory is TOTP:
            assert otp.verify(typed, at=at, window=MAX_WINDOW) is None
        else:
            step = otp.counter_at(at)
            assert HOTP(key).verify(typed, step, look_ahead=0) is None


@pytest.mark.parametrize("code", [123456, b"123456", None, 123456.0, ["123456"]])
def test_non_string_code_is_type_error(key: bytes, code: object) -> None:
    """A code that is not a str is a programming error."""
    with pytest.raises(TypeError):
        TOTP(key).verify(code, at=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        HOTP(key).verify(code, 0)  # type: ignore[arg-type]


@given(digits=st.integers(6, 8), at=st.integers(0, 2**40), code=st.text(max_size=12))
def test_arbitrary_text_never_raises(key: bytes, digits: int, at: int, code: str) -> None:
    """verify() returns a Match or None for any text at all."""
    result = TOTP(key, digits=digits).verify(code, at=at)
    assert result is None or isinstance(result, Match)


# --- engine (totpcore._engine, shared with the service) ------------------------------------


@given(
    key=st.binary(min_size=1, max_size=300),
    counter=st.integers(0, MAX_COUNTER),
    digits=st.integers(6, 8),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
)
def test_keyed_matches_stdlib_hmac(key: bytes, counter: int, digits: int, algorithm: str) -> None:
    """value() and code() agree with the plain stdlib HMAC, for short and long keys.

    Keys run up to 300 bytes, past the largest hash block (SHA512's 128), so the RFC 2104
    hashing of long keys is covered for every algorithm.
    """
    keyed = Keyed(key, digits=digits, algorithm=algorithm)
    expected = reference_hotp(key, counter, digits, algorithm.lower())
    assert keyed.code(counter) == expected
    assert keyed.value(counter) == int(expected)
    assert (keyed.key, keyed.digits, keyed.algorithm) == (key, digits, algorithm)


def test_keyed_values_stop_at_the_last_counter(key: bytes) -> None:
    """values() covers first..last inclusive, clipped at 2**64-1 instead of wrapping."""
    keyed = Keyed(key, digits=6, algorithm="SHA1")
    assert keyed.values(5, 9) == [int(reference_hotp(key, counter)) for counter in range(5, 10)]
    assert keyed.values(MAX_COUNTER - 1, MAX_COUNTER + 3) == [
        int(reference_hotp(key, MAX_COUNTER - 1)),
        int(reference_hotp(key, MAX_COUNTER)),
    ]
    assert keyed.values(7, 6) == []


@pytest.mark.parametrize(
    ("counter", "past", "future", "computed"),
    [
        (1_000, 2, 3, range(998, 1_004)),
        (1, 5, 1, range(3)),
        (MAX_COUNTER - 1, 1, 5, range(MAX_COUNTER - 2, MAX_COUNTER + 1)),
    ],
    ids=["inside", "clipped at 0", "clipped at 2**64-1"],
)
def test_keyed_around_computes_the_clipped_window_whole(
    key: bytes, counter: int, past: int, future: int, computed: range
) -> None:
    """around() computes every counter of the window, clipped to 0 .. 2**64-1.

    The code is the first counter's, so an early exit would show as a shorter log; the counter
    returned is one of the window's and produces the code.
    """
    keyed = Keyed(key, digits=6, algorithm="SHA1")
    first_value = keyed.value(computed[0])
    log: list[int] = []
    keyed.inner = RecordingHash(keyed.inner, log)
    matched = keyed.around(first_value, counter, past, future)
    assert log == list(computed)
    assert matched in computed
    assert keyed.value(matched) == first_value


def test_keyed_around_answers_minus_one_for_no_match(key: bytes) -> None:
    """around() answers -1, never a counter, when no counter of the window has the code.

    -1 is below every valid counter, so a caller testing ``< 0`` cannot mistake it for one.
    """
    keyed = Keyed(key, digits=6, algorithm="SHA1")
    values = {keyed.value(counter) for counter in range(99, 102)}
    wrong = next(value for value in range(10**6) if value not in values)
    assert keyed.around(wrong, 100, 1, 1) == -1
    assert keyed.around(keyed.value(101), 100, 1, 1) == 101


@pytest.mark.parametrize(
    ("code", "digits", "expected"),
    [
        ("012345", 6, 12345),
        ("012 345", 6, 12345),
        (" 0 1 2 3 4 5 ", 6, 12345),
        ("01234567", 8, 1234567),
        ("12345", 6, None),
        ("+12345", 6, None),
        ("12345\n", 6, None),
        ("\uff10\uff11\uff12\uff13\uff14\uff15", 6, None),
    ],
)
def test_code_value(code: str, digits: int, expected: int | None) -> None:
    """code_value() reads exactly `digits` ASCII digits once spaces are removed."""
    assert code_value(code, digits) == expected


def test_code_value_refuses_non_str() -> None:
    """A code that is not a str is a programming error, as in verify()."""
    with pytest.raises(TypeError):
        code_value(b"123456", 6)  # type: ignore[arg-type]


def test_no_private_class_in_the_public_api() -> None:
    """HOTP and TOTP have no private base class, and Match still belongs to totpcore.otp.

    Sphinx shows a class's bases, and pickles and docs name a class by its module.
    """
    import pickle

    import totpcore.otp

    for cls in (HOTP, TOTP):
        assert cls.__bases__ == (object,)
    assert Match is totpcore.otp.Match
    assert Match.__module__ == "totpcore.otp"
    assert pickle.loads(pickle.dumps(Match(7, -1))) == Match(7, -1)


def test_block_sizes_are_the_hashes_own() -> None:
    """The HMAC block size the engine assumes for each algorithm is what hashlib reports."""
    from totpcore._checks import HASHES
    from totpcore._engine import BLOCK_SIZES

    assert {name: new_hash().block_size for name, new_hash in HASHES.items()} == BLOCK_SIZES


def test_hashes_are_hashlibs_own() -> None:
    """The engine's hash constructors are hashlib's (taken from its OpenSSL module directly)."""
    import hashlib

    from totpcore._checks import HASHES

    for name, new_hash in HASHES.items():
        assert new_hash is getattr(hashlib, name.lower())
        assert new_hash(b"abc").digest() == hashlib.new(name.lower(), b"abc").digest()


# --- edges found by mutation testing -------------------------------------------------------

#: A key whose codes at counters 0 and 8 are the same (287676), with no repeat between: a
#: match at counter 0 must still lose to a nearer later one, and win against a farther one.
ZERO_REPEAT_KEY = bytes.fromhex("30dd03") + bytes(17)


def test_a_match_at_step_zero_follows_the_nearest_rule() -> None:
    """A match at step 0 (a counter equal to 0, not "no match") is weighed like any other.

    The sentinel for "no match yet" is -1, so a scan that treated a match at 0 as none would
    let the farther step 8 replace it; found with a fixed key whose steps 0 and 8 share a code.
    """
    otp = TOTP(ZERO_REPEAT_KEY, period=1)
    keyed = Keyed(ZERO_REPEAT_KEY, digits=6, algorithm="SHA1")
    assert otp.generate(0) == otp.generate(8) == "287676"
    for step in range(9):
        expected = Match(0, -step) if step <= 4 else Match(8, 8 - step)  # a tie (4) goes early
        assert otp.verify("287676", at=step, window=(MAX_WINDOW, MAX_WINDOW)) == expected
        assert keyed.around(287676, step, MAX_WINDOW, MAX_WINDOW) == expected.counter


def test_a_block_sized_key_is_used_as_it_is() -> None:
    """A key of exactly the hash block (64 bytes for SHA1) is padded, not hashed (RFC 2104 §2).

    Only keys longer than the block are hashed first; the result is checked against hmac.
    """
    for size in (63, 64, 65):
        key = bytes(range(size))
        assert HOTP(key).generate(7) == reference_hotp(key, 7), size


def test_option_errors_name_the_option() -> None:
    """A non-int window side or look-ahead is refused with a message naming it."""
    otp = TOTP(RFC4226_KEY)
    for window in ("1", (1, "1"), ("1", 1)):
        with pytest.raises(TypeError, match=r"^window must be an int"):
            otp.verify("123456", at=0, window=window)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^look_ahead must be an int"):
        HOTP(RFC4226_KEY).verify("123456", 0, look_ahead="1")  # type: ignore[arg-type]


def test_hotp_looks_ahead_only_when_asked() -> None:
    """By default HOTP accepts the expected counter only: the next counter's code is refused."""
    otp = HOTP(RFC4226_KEY)
    assert otp.verify(otp.generate(11), 10) is None
    assert otp.verify(otp.generate(11), 10, look_ahead=1) == Match(11, 1)


#: An 80-bit secret, under RFC 4226's 128-bit minimum (legacy apps still issue them).
SHORT_SECRET = encode_secret(bytes(range(10)))


def test_short_keys_are_refused_by_default_everywhere() -> None:
    """Every way to build an HOTP or TOTP refuses an 80-bit key unless told to accept it."""
    short = bytes(range(10))
    uri = f"otpauth://hotp/X:a?secret={SHORT_SECRET}&issuer=X&counter=0"
    for build in (
        lambda **options: HOTP(short, **options),
        lambda **options: TOTP(short, **options),
        lambda **options: HOTP.from_secret(SHORT_SECRET, **options),
        lambda **options: TOTP.from_secret(SHORT_SECRET, **options),
        lambda **options: HOTP.from_uri(uri, **options),
        lambda **options: TOTP.from_uri(uri.replace("hotp", "totp"), **options),
    ):
        with pytest.raises(InvalidSecretError):
            build()
        assert build(enforce_key_length=False).key == short


def test_from_secret_keeps_every_option() -> None:
    """from_secret passes digits, algorithm, period and t0 through, with the usual defaults."""
    secret = encode_secret(RFC4226_KEY)
    assert (HOTP.from_secret(secret).digits, HOTP.from_secret(secret).algorithm) == (6, "SHA1")
    counter = HOTP.from_secret(secret, digits=8, algorithm="SHA256")
    assert (counter.digits, counter.algorithm) == (8, "SHA256")
    assert counter.generate(3) == reference_hotp(RFC4226_KEY, 3, 8, "sha256")
    timed = TOTP.from_secret(secret, digits=7, algorithm="SHA512", period=60, t0=100)
    assert (timed.digits, timed.algorithm, timed.period, timed.t0) == (7, "SHA512", 60, 100)
    assert timed.generate(100 + 60 * 5) == reference_hotp(RFC4226_KEY, 5, 7, "sha512")


def test_hotp_function_honours_digits_and_algorithm() -> None:
    """hotp() computes with the digits and algorithm it is given (RFC 4226 §5.3, RFC 6238)."""
    for algorithm in ("SHA1", "SHA256", "SHA512"):
        for digits in (6, 7, 8):
            assert hotp(RFC4226_KEY, 9, digits=digits, algorithm=algorithm) == reference_hotp(
                RFC4226_KEY, 9, digits, algorithm.lower()
            )


def test_uris_carry_issuer_and_algorithm_both_ways() -> None:
    """uri() writes the issuer and algorithm, and from_uri() reads the algorithm back."""
    for otp in (HOTP(RFC4226_KEY, algorithm="SHA256"), TOTP(RFC4226_KEY, algorithm="SHA256")):
        parsed = parse_uri(otp.uri("alice", issuer="Example"))
        assert (parsed.issuer, parsed.algorithm) == ("Example", "SHA256")
        assert type(otp).from_uri(otp.uri("alice", issuer="Example")).algorithm == "SHA256"


def test_equal_objects_hash_equal_and_different_ones_spread() -> None:
    """Hashing follows equality, and different keys do not all share one hash value."""
    for kind in (HOTP, TOTP):
        assert hash(kind(RFC4226_KEY)) == hash(kind(bytes(RFC4226_KEY)))
        assert len({hash(kind(bytes([n]) * 20)) for n in range(8)}) > 1


def test_match_repr_and_hotp_uri_counter() -> None:
    """A Match shows both fields by name; an HOTP URI starts at counter 0 unless told."""
    assert repr(Match(5, -1)) == "Match(counter=5, offset=-1)"
    otp = HOTP(RFC4226_KEY)
    assert parse_uri(otp.uri("alice")).counter == 0
    assert parse_uri(otp.uri("alice", counter=7)).counter == 7
