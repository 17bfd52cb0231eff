"""Edges of what is parsed and stored: base32 secrets, recovery hashes and ciphertexts.

Pinned where mutation testing found them loose: the last character of a 7-character base32
tail, the largest generated secret, the recovery hash format and its parser, and the sizes at
which a ciphertext counts as truncated. docs/mutation-testing.md lists the mutants each one
kills.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest

from totpcore import (
    TOTP,
    AESGCMCipher,
    CipherError,
    InvalidSecretError,
    decode_secret,
    generate_secret,
    recovery,
)
from totpcore._checks import MAX_USER_ID_LENGTH, check_user_id
from totpcore.secret import MAX_SECRET_LENGTH

AESGCM = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead").AESGCM


# --- base32 secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("last", ["2", "3", "4", "5", "6", "7"])
def test_a_seven_character_tail_ending_in_a_digit_is_not_canonical(last: str) -> None:
    """Seven leftover characters carry 32 bits: the last one's 3 low bits must be zero.

    The digits 2-7 stand for 26-31, whose low 3 bits are never all zero, so each is refused.
    """
    with pytest.raises(InvalidSecretError, match="unused bits"):
        decode_secret("AAAAAA" + last)


def test_a_seven_character_tail_with_clean_low_bits_decodes() -> None:
    """The same tail ending in a letter with clean low bits (Y = 24) decodes to 4 bytes."""
    assert decode_secret("AAAAAAY") == bytes([0, 0, 0, 3])


def test_the_largest_secret_can_be_generated() -> None:
    """4096 bits is allowed (the documented maximum); 4104 is not."""
    assert len(decode_secret(generate_secret(4096))) == 512
    with pytest.raises(ValueError, match="no larger than 4096"):
        generate_secret(4104)


# --- recovery hashes ------------------------------------------------------------------------------


def fields(entry: str) -> list[str]:
    """The ``$``-separated fields of a stored recovery hash."""
    return entry.split("$")


def test_recovery_hashes_have_the_documented_format() -> None:
    """Each hash is ``pbkdf2_sha256$iterations$salt$digest``: 128-bit salt, no base64 padding."""
    codes = recovery.generate_recovery_codes(3)
    for entry in recovery.hash_recovery_codes(codes, iterations=10):
        scheme, iterations, salt, digest = fields(entry)
        assert (scheme, iterations) == ("pbkdf2_sha256", "10")
        assert "=" not in entry
        assert len(base64.urlsafe_b64decode(salt + "==")) == 16
        assert len(base64.urlsafe_b64decode(digest + "==")) == 32


def test_an_unreadable_entry_does_not_hide_the_ones_after_it() -> None:
    """A stored entry the parser refuses is skipped; later entries are still compared."""
    codes = recovery.generate_recovery_codes(1)
    stored = recovery.hash_recovery_codes(codes, iterations=10)
    assert recovery.find_recovery_hash(codes[0], ("garbage", *stored)) == stored[0]


def test_sets_with_different_salts_are_each_derived() -> None:
    """Hashes from two sets (two salts) in one tuple: a code of the second set is found."""
    first = recovery.generate_recovery_codes(1)
    second = recovery.generate_recovery_codes(1)
    stored = (
        *recovery.hash_recovery_codes(first, iterations=10),
        *recovery.hash_recovery_codes(second, iterations=11),
    )
    assert recovery.find_recovery_hash(second[0], stored) == stored[1]
    assert recovery.find_recovery_hash(first[0], stored) == stored[0]


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: entry.replace("pbkdf2_sha256", "pbkdf2_sha512", 1),
        lambda entry: entry + "$extra",
        lambda entry: entry.replace("$10$", "$1x$", 1),
    ],
    ids=["other-scheme", "extra-field", "iterations-not-digits"],
)
def test_entries_in_another_format_never_match(damage: Callable[[str], str]) -> None:
    """An entry with another scheme, a fifth field or a non-numeric count matches no code.

    The digest inside is still the right one, so only the parser can refuse it.
    """
    codes = recovery.generate_recovery_codes(1)
    (entry,) = recovery.hash_recovery_codes(codes, iterations=10)
    assert recovery.find_recovery_hash(codes[0], (damage(entry),)) is None


# --- ciphertexts ------------------------------------------------------------------------------


def test_a_legacy_ciphertext_of_an_empty_secret_is_not_truncated() -> None:
    """A 0.1.0 ciphertext is nonce and tag at least: exactly 28 bytes still decrypts."""
    # A fixed key and nonce: a random nonce begins with the current format's magic ("tc1")
    # once in 2**24, which would make this a different test.
    key = bytes(range(32))
    nonce = bytes(range(100, 112))
    legacy = nonce + AESGCM(key).encrypt(nonce, b"", b"alice")
    assert len(legacy) == 28
    assert not legacy.startswith(b"tc1")
    assert AESGCMCipher(key).decrypt(legacy, associated_data=b"alice") == b""


def test_a_short_legacy_ciphertext_is_reported_as_truncated() -> None:
    """Fewer than 28 bytes in the 0.1.0 format fail as truncated, not as a bad tag."""
    cipher = AESGCMCipher(os.urandom(32))
    with pytest.raises(CipherError, match="truncated"):
        cipher.decrypt(b"x" * 27, associated_data=b"alice")


def test_a_short_current_ciphertext_is_reported_as_truncated() -> None:
    """A current-format header followed by less than nonce and tag fails as truncated."""
    cipher = AESGCMCipher(os.urandom(32))
    header = b"tc1" + bytes.fromhex(cipher.fingerprints()[0])
    with pytest.raises(CipherError, match="truncated"):
        cipher.decrypt(header + b"n" * 27, associated_data=b"alice")
    sealed = cipher.encrypt(b"", associated_data=b"alice")
    assert len(sealed) == len(header) + 28
    assert cipher.decrypt(sealed, associated_data=b"alice") == b""


def test_a_secret_of_the_longest_accepted_length_decodes() -> None:
    """Exactly MAX_SECRET_LENGTH base32 characters decode; one group more is refused."""
    text = "A" * MAX_SECRET_LENGTH
    assert decode_secret(text) == bytes(MAX_SECRET_LENGTH * 5 // 8)
    with pytest.raises(InvalidSecretError, match="longer than"):
        decode_secret(text + "A" * 8)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("AB=CDEFG", "'=' before the end at position 2"),
        ("ABC!DEFG", "outside base32 at position 3"),
    ],
)
def test_a_refused_character_is_named_with_its_position(text: str, problem: str) -> None:
    """The message says whether a misplaced ``=`` or a foreign character was found, and where."""
    with pytest.raises(InvalidSecretError) as caught:
        decode_secret(text)
    assert problem in str(caught.value)


# --- option and user id checks --------------------------------------------------------------------


def test_t0_may_be_as_late_as_the_largest_signed_64_bit_second() -> None:
    """``t0`` runs from 0 to 2**63-1 seconds; 2**63 is refused."""
    key = bytes(range(20))
    assert TOTP(key, t0=2**63 - 1).t0 == 2**63 - 1
    with pytest.raises(ValueError, match="t0"):
        TOTP(key, t0=2**63)


def test_user_ids_up_to_the_length_limit_and_only_encodable_ones() -> None:
    """A user id may be MAX_USER_ID_LENGTH characters long, and must be encodable as UTF-8."""
    check_user_id("a" * MAX_USER_ID_LENGTH)
    check_user_id("é" * MAX_USER_ID_LENGTH)
    with pytest.raises(ValueError, match="1 to 256 characters"):
        check_user_id("a" * (MAX_USER_ID_LENGTH + 1))
    with pytest.raises(ValueError, match="UTF-8"):
        check_user_id("alice\ud800")
