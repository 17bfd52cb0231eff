"""The published test vectors: RFC 4226 Appendix D and RFC 6238 Appendix B."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import load_vectors
from totpcore import HOTP, TOTP, hotp

RFC4226 = load_vectors("rfc4226.json")
RFC6238 = load_vectors("rfc6238.json")["vectors"]


def test_vector_files_are_complete() -> None:
    """The data files hold all 10 HOTP and all 18 TOTP vectors (a truncated copy would pass)."""
    assert len(RFC4226["vectors"]) == 10
    assert len(RFC6238) == 18
    assert {v["algorithm"] for v in RFC6238} == {"SHA1", "SHA256", "SHA512"}


@pytest.mark.parametrize("vector", RFC4226["vectors"], ids=lambda v: f"counter={v['counter']}")
def test_rfc4226_hotp_function(vector: dict[str, Any]) -> None:
    """hotp() reproduces every RFC 4226 Appendix D value."""
    key = bytes.fromhex(RFC4226["key_hex"])
    assert hotp(key, vector["counter"]) == vector["code"]


@pytest.mark.parametrize("vector", RFC4226["vectors"], ids=lambda v: f"counter={v['counter']}")
def test_rfc4226_hotp_class(vector: dict[str, Any]) -> None:
    """HOTP generates and verifies every RFC 4226 value, with the right counter."""
    otp = HOTP(bytes.fromhex(RFC4226["key_hex"]))
    assert otp.generate(vector["counter"]) == vector["code"]
    match = otp.verify(vector["code"], 0, look_ahead=9)
    assert match is not None
    assert match.counter == vector["counter"]
    assert match.offset == vector["counter"]


def _totp(vector: dict[str, Any]) -> TOTP:
    """Build the TOTP object a vector describes."""
    return TOTP(
        bytes.fromhex(vector["key_hex"]),
        digits=vector["digits"],
        algorithm=vector["algorithm"],
        period=vector["period"],
        t0=vector["t0"],
    )


@pytest.mark.parametrize("vector", RFC6238, ids=lambda v: f"{v['algorithm']}-{v['time']}")
def test_rfc6238_totp(vector: dict[str, Any]) -> None:
    """TOTP reproduces every RFC 6238 Appendix B value, including the year-2603 time."""
    otp = _totp(vector)
    assert otp.counter_at(vector["time"]) == vector["counter"]
    assert f"{vector['counter']:016X}" == vector["counter_hex"]
    assert otp.generate(vector["time"]) == vector["code"]
    match = otp.verify(vector["code"], at=vector["time"], window=0)
    assert match is not None
    assert (match.counter, match.offset) == (vector["counter"], 0)


@pytest.mark.parametrize("vector", RFC6238, ids=lambda v: f"{v['algorithm']}-{v['time']}")
def test_rfc6238_totp_with_datetime(vector: dict[str, Any]) -> None:
    """The same vectors hold when the time is given as an aware datetime."""
    at = datetime.fromtimestamp(vector["time"], tz=UTC)
    assert _totp(vector).generate(at) == vector["code"]


def test_rfc6238_seeds_differ_per_algorithm() -> None:
    """SHA256 and SHA512 use the 32- and 64-byte seeds, not the 20-byte SHA1 one."""
    sizes = {v["algorithm"]: len(bytes.fromhex(v["key_hex"])) for v in RFC6238}
    assert sizes == {"SHA1": 20, "SHA256": 32, "SHA512": 64}
