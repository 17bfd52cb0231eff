"""Secrets: generation, canonical base32 output, forgiving-but-strict input."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from totpcore import (
    InvalidParameterError,
    InvalidSecretError,
    TotpcoreError,
    decode_secret,
    encode_secret,
    generate_secret,
)
from totpcore.secret import MAX_SECRET_LENGTH

# A realistic 160-bit secret; bad inputs below are built around it so that a message that
# echoed its input would be caught leaking it.
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
B32 = string.ascii_uppercase + "234567"


def test_generate_secret_default_is_160_bits_canonical() -> None:
    """The default secret is 160 bits, upper-case base32 without padding."""
    secret = generate_secret()
    assert len(secret) == 32
    assert set(secret) <= set(B32)
    assert len(decode_secret(secret)) == 20


def test_generate_secret_128_bits_has_no_padding() -> None:
    """128 bits is 26 characters: the padding base64 would add is stripped."""
    secret = generate_secret(128)
    assert len(secret) == 26
    assert "=" not in secret
    assert len(decode_secret(secret)) == 16


def test_generate_secret_is_random() -> None:
    """A hundred secrets are all different (a constant or a seeded PRNG would repeat)."""
    assert len({generate_secret() for _ in range(100)}) == 100


@pytest.mark.parametrize("bits", [0, 64, 80, 120, 127, 130, 4104, -160])
def test_generate_secret_refuses_bad_sizes(bits: int) -> None:
    """Under 128 bits (RFC 4226 §4), over 4096, or not whole bytes: refused."""
    with pytest.raises(InvalidParameterError):
        generate_secret(bits)


@pytest.mark.parametrize("bits", ["160", 160.0, True, None])
def test_generate_secret_bits_must_be_int(bits: object) -> None:
    """A non-int size is a programming error: TypeError."""
    with pytest.raises(TypeError):
        generate_secret(bits)  # type: ignore[arg-type]


@given(st.binary(min_size=1, max_size=200))
def test_encode_decode_round_trip(key: bytes) -> None:
    """decode(encode(key)) == key for every non-empty key, and the text is canonical."""
    text = encode_secret(key)
    assert decode_secret(text) == key
    assert text == text.upper()
    assert "=" not in text


@given(st.text(alphabet=B32 + "=", max_size=40))
def test_accepted_texts_are_canonical(text: str) -> None:
    """Any text decode_secret accepts re-encodes to itself without padding.

    This is the property that makes input strict: no two accepted texts decode to one key.
    """
    try:
        key = decode_secret(text)
    except InvalidSecretError:
        return
    assert encode_secret(key) == text.rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        SECRET.lower(),
        "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp",
        "JBSW-Y3DP-EHPK-3PXP-JBSW-Y3DP-EHPK-3PXP",
        " JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP ",
        "JbSwY3dPeHpK3pXpJbSwY3dPeHpK3pXp",
    ],
)
def test_decode_is_forgiving_of_case_spaces_and_hyphens(text: str) -> None:
    """Case, ASCII spaces and hyphens used for grouping do not matter."""
    assert decode_secret(text) == decode_secret(SECRET)


def test_decode_accepts_missing_or_exact_padding() -> None:
    """Padding may be left out, or be exactly what base32 puts there."""
    key = bytes(range(16))
    padded = base64.b32encode(key).decode()
    assert padded.endswith("======")
    assert decode_secret(padded) == key
    assert decode_secret(padded.rstrip("=")) == key


BAD_SECRETS = {
    "empty": "",
    "only spaces and hyphens": " - -  ",
    "only padding": "========",
    "digit one": SECRET[:-1] + "1",
    "digit zero": SECRET[:-1] + "0",
    "digit eight": SECRET[:-1] + "8",
    "punctuation": SECRET[:-1] + "!",
    "tab": SECRET[:16] + "\t" + SECRET[16:],
    "newline": SECRET + "\n",
    "underscore": SECRET[:16] + "_" + SECRET[16:],
    "padding in the middle": SECRET[:8] + "=" + SECRET[8:],
    "padding between groups": SECRET[:8] + "========" + SECRET[8:],
    "1 char past a group": SECRET + "A",
    "3 chars past a group": SECRET + "AAA",
    "6 chars past a group": SECRET + "AAAAAA",
    "wrong padding amount": SECRET + "AA=",
    "too much padding": SECRET + "AA=========",
    "padding on a full group": SECRET + "========",
    "unused bits set (2 chars)": SECRET + "AB",
    "unused bits set (4 chars)": SECRET + "AAAB",
    "unused bits set (5 chars)": SECRET + "AAAAB",
    "unused bits set (7 chars)": SECRET + "AAAAAAB",
    "dotless i": SECRET[:-1] + "\u0131",
    "long s": SECRET[:-1] + "\u017f",
    "cyrillic A": SECRET[:-1] + "\u0410",
    "full-width letters": "\uff2a\uff22\uff33\uff37" + SECRET[4:],
    "non-breaking space": SECRET[:16] + "\u00a0" + SECRET[16:],
    "too long": "A" * (MAX_SECRET_LENGTH + 8),
}


@pytest.mark.parametrize("text", BAD_SECRETS.values(), ids=BAD_SECRETS.keys())
def test_decode_refuses_bad_secrets_without_leaking(text: str) -> None:
    """Every malformed secret is an InvalidSecretError (a ValueError) that does not echo it."""
    with pytest.raises(InvalidSecretError) as caught:
        decode_secret(text)
    assert isinstance(caught.value, TotpcoreError)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message
    assert SECRET[:12] not in message
    assert SECRET[-12:] not in message


def test_decode_message_says_where() -> None:
    """The message names the position of a bad character, so users can find their typo."""
    with pytest.raises(InvalidSecretError, match="position 31"):
        decode_secret(SECRET[:-1] + "1")


@pytest.mark.parametrize("value", [b"JBSWY3DP", None, 12345, ["JBSWY3DP"]])
def test_decode_needs_a_str(value: object) -> None:
    """Anything but a str is a TypeError."""
    with pytest.raises(TypeError):
        decode_secret(value)  # type: ignore[arg-type]


def test_encode_refuses_empty_and_non_bytes() -> None:
    """An empty key cannot be a secret, and a str is not a key."""
    with pytest.raises(InvalidSecretError):
        encode_secret(b"")
    with pytest.raises(TypeError):
        encode_secret("JBSWY3DP")  # type: ignore[arg-type]


def test_encode_accepts_bytearray() -> None:
    """A bytearray key encodes like the same bytes."""
    assert encode_secret(bytearray(b"\x00\x01")) == encode_secret(b"\x00\x01")
