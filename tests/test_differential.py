"""Differential tests: totpcore agrees with pyotp, cryptography and the oathtool program."""

from __future__ import annotations

import subprocess

import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.hotp import HOTP as CryptoHOTP
from cryptography.hazmat.primitives.twofactor.totp import TOTP as CryptoTOTP
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_program
from totpcore import HOTP, TOTP, encode_secret

ALGORITHMS: dict[str, hashes.SHA1 | hashes.SHA256 | hashes.SHA512] = {
    "SHA1": hashes.SHA1(),
    "SHA256": hashes.SHA256(),
    "SHA512": hashes.SHA512(),
}
PYOTP_DIGESTS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}

keys = st.binary(min_size=16, max_size=80)
algorithms = st.sampled_from(sorted(ALGORITHMS))
digits = st.integers(6, 8)
periods = st.sampled_from([30, 60]) | st.integers(1, 600)
# Up to past the year 2603 (the last RFC 6238 vector) and 2**35 seconds.
times = st.integers(0, 2**35)


# pyotp itself refuses periods over 120 s.
@given(key=keys, algorithm=algorithms, digits=digits, period=st.integers(1, 120), at=times)
def test_totp_matches_pyotp(key: bytes, algorithm: str, digits: int, period: int, at: int) -> None:
    """TOTP codes equal pyotp's for random keys, algorithms, digits, periods and times."""
    import hashlib

    theirs = pyotp.TOTP(
        encode_secret(key),
        digits=digits,
        digest=getattr(hashlib, PYOTP_DIGESTS[algorithm]),
        interval=period,
    ).at(at)
    ours = TOTP(key, digits=digits, algorithm=algorithm, period=period)
    assert ours.generate(at) == theirs


@given(key=keys, algorithm=algorithms, digits=digits, period=periods, at=times)
def test_totp_matches_cryptography(
    key: bytes, algorithm: str, digits: int, period: int, at: int
) -> None:
    """TOTP codes equal cryptography's twofactor TOTP, and verify accepts them at offset 0."""
    theirs = CryptoTOTP(key, digits, ALGORITHMS[algorithm], period).generate(at).decode()
    ours = TOTP(key, digits=digits, algorithm=algorithm, period=period)
    assert ours.generate(at) == theirs
    match = ours.verify(theirs, at=at, window=0)
    assert match is not None
    assert match.offset == 0


@given(
    key=keys,
    algorithm=algorithms,
    digits=digits,
    counter=st.integers(0, 2**64 - 1),
)
def test_hotp_matches_cryptography(key: bytes, algorithm: str, digits: int, counter: int) -> None:
    """HOTP codes equal cryptography's over the whole 64-bit counter range."""
    theirs = CryptoHOTP(key, digits, ALGORITHMS[algorithm]).generate(counter).decode()
    assert HOTP(key, digits=digits, algorithm=algorithm).generate(counter) == theirs


@given(key=keys, at=st.integers(90, 2**34), offset=st.integers(-3, 3))
def test_verify_finds_pyotp_codes_at_their_offset(key: bytes, at: int, offset: int) -> None:
    """A code pyotp makes ``offset`` steps away is found at that offset inside a ±3 window."""
    theirs = pyotp.TOTP(encode_secret(key)).at(at + 30 * offset)
    match = TOTP(key).verify(theirs, at=at, window=3)
    assert match is not None
    # A different slot can collide with the same 6 digits (about 6 in 10**6); then the
    # matching slot nearest the expected step is reported, the earlier one on a tie: never
    # farther than the real one. (Not "never older": a nearer earlier slot wins over a later
    # real one, so ``match.offset >= offset`` failed about once in 5,000 runs.)
    assert (abs(match.offset), match.offset) <= (abs(offset), offset)
    if match.offset != offset:
        assert TOTP(key).generate(at + 30 * match.offset) == theirs


@settings(max_examples=60)
@given(key=keys, algorithm=algorithms, digits=digits, period=periods, at=times)
def test_totp_matches_oathtool(
    key: bytes, algorithm: str, digits: int, period: int, at: int
) -> None:
    """TOTP codes equal those of the oathtool program (OATH Toolkit), run as a subprocess."""
    oathtool = require_program("oathtool")
    result = subprocess.run(
        [
            oathtool,
            f"--totp={algorithm}",
            f"--digits={digits}",
            f"--time-step-size={period}s",
            f"--now=@{at}",
            key.hex(),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert TOTP(key, digits=digits, algorithm=algorithm, period=period).generate(at) == (
        result.stdout.strip()
    )


@settings(max_examples=40)
@given(key=keys, digits=digits, counter=st.integers(0, 2**64 - 1))
def test_hotp_matches_oathtool(key: bytes, digits: int, counter: int) -> None:
    """HOTP (SHA1, the only HOTP mode oathtool has) equals oathtool over 64-bit counters."""
    oathtool = require_program("oathtool")
    result = subprocess.run(
        [oathtool, f"--digits={digits}", f"--counter={counter}", key.hex()],
        capture_output=True,
        text=True,
        check=True,
    )
    assert HOTP(key, digits=digits).generate(counter) == result.stdout.strip()
