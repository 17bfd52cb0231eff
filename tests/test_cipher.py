"""AESGCMCipher: the keyring, its ciphertext format, rotation, fingerprints and failures."""

from __future__ import annotations

import hmac
import os
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from totpcore.cipher import AESGCMCipher, SecretCipher
from totpcore.errors import CipherError, InvalidParameterError, MissingDependencyError

AD = b"alice\x00generation=3"
PLAINTEXT = b"12345678901234567890"
KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
KEY_C = bytes(range(64, 96))


def legacy_ciphertext(key: bytes, plaintext: bytes, associated_data: bytes, nonce: bytes) -> bytes:
    """Build a totpcore 0.1.0 ciphertext, ``nonce || ciphertext || tag``, by hand."""
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def assert_reveals_no_key(text: str, *keys: bytes) -> None:
    """Fail if ``text`` contains any of ``keys`` in hex or as raw bytes."""
    for key in keys:
        assert key.hex() not in text.lower()
        assert repr(key) not in text


# --- round trip and format -----------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 24, 32])
def test_round_trip(size: int) -> None:
    """Every AES key size encrypts and decrypts back to the plaintext."""
    cipher = AESGCMCipher(os.urandom(size))
    assert cipher.decrypt(cipher.encrypt(PLAINTEXT, associated_data=AD), associated_data=AD) == (
        PLAINTEXT
    )


def test_round_trip_of_empty_plaintext_and_associated_data() -> None:
    """Empty plaintext and empty associated data are valid inputs."""
    cipher = AESGCMCipher(KEY_A)
    assert cipher.decrypt(cipher.encrypt(b"", associated_data=b""), associated_data=b"") == b""


def test_ciphertext_format() -> None:
    """A ciphertext is magic, the current key id, a nonce, then the sealed data and tag."""
    cipher = AESGCMCipher(KEY_A, old_keys=[KEY_B])
    blob = cipher.encrypt(PLAINTEXT, associated_data=AD)
    assert blob[:3] == b"tc1"
    assert blob[3:11] == bytes.fromhex(cipher.fingerprints()[0])
    assert len(blob) == 3 + 8 + 12 + len(PLAINTEXT) + 16
    nonce, sealed = blob[11:23], blob[23:]
    assert AESGCM(KEY_A).decrypt(nonce, sealed, AD) == PLAINTEXT
    assert PLAINTEXT not in blob


def test_each_encryption_uses_a_fresh_nonce() -> None:
    """Encrypting the same plaintext twice gives different nonces and ciphertexts."""
    cipher = AESGCMCipher(KEY_A)
    first = cipher.encrypt(PLAINTEXT, associated_data=AD)
    second = cipher.encrypt(PLAINTEXT, associated_data=AD)
    assert first[11:23] != second[11:23]
    assert first != second


# --- authentication failures ---------------------------------------------------------------


def test_associated_data_mismatch_fails() -> None:
    """A ciphertext bound to one user's enrolment does not open for another."""
    cipher = AESGCMCipher(KEY_A)
    blob = cipher.encrypt(PLAINTEXT, associated_data=b"alice\x00generation=3")
    for other in (b"mallory\x00generation=3", b"alice\x00generation=4", b""):
        with pytest.raises(CipherError):
            cipher.decrypt(blob, associated_data=other)


def test_any_tampered_byte_fails() -> None:
    """Flipping a bit anywhere (header, nonce, body or tag) raises CipherError."""
    cipher = AESGCMCipher(KEY_A, old_keys=[KEY_B])
    blob = cipher.encrypt(PLAINTEXT, associated_data=AD)
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(CipherError):
            cipher.decrypt(bytes(tampered), associated_data=AD)


@pytest.mark.parametrize("length", [0, 2, 3, 11, 22, 23, 38])
def test_truncated_ciphertext_fails(length: int) -> None:
    """A ciphertext cut short raises CipherError, never another exception."""
    cipher = AESGCMCipher(KEY_A)
    blob = cipher.encrypt(b"", associated_data=AD)
    assert len(blob) == 39
    with pytest.raises(CipherError):
        cipher.decrypt(blob[:length], associated_data=AD)


def test_wrong_key_fails() -> None:
    """A 0.1.0 ciphertext under a key the ring lacks raises CipherError."""
    blob = legacy_ciphertext(KEY_B, PLAINTEXT, AD, os.urandom(12))
    with pytest.raises(CipherError):
        AESGCMCipher(KEY_A).decrypt(blob, associated_data=AD)


# --- rotation ------------------------------------------------------------------------------


def test_old_key_decrypts_after_rotation() -> None:
    """After rotation an old key's ciphertext still opens and is flagged for rotation."""
    before = AESGCMCipher(KEY_A)
    old_blob = before.encrypt(PLAINTEXT, associated_data=AD)
    after = AESGCMCipher(KEY_B, old_keys=[KEY_A])
    assert after.decrypt(old_blob, associated_data=AD) == PLAINTEXT
    assert after.needs_rotation(old_blob)
    new_blob = after.encrypt(after.decrypt(old_blob, associated_data=AD), associated_data=AD)
    assert not after.needs_rotation(new_blob)
    assert new_blob[3:11] == bytes.fromhex(after.fingerprints()[0])
    assert after.decrypt(new_blob, associated_data=AD) == PLAINTEXT
    # Once the old key is dropped, only the re-encrypted record still opens.
    finished = AESGCMCipher(KEY_B)
    assert finished.decrypt(new_blob, associated_data=AD) == PLAINTEXT
    with pytest.raises(CipherError):
        finished.decrypt(old_blob, associated_data=AD)


def test_several_old_keys_all_decrypt() -> None:
    """Every key in old_keys is accepted, each found by its key id."""
    blobs = [AESGCMCipher(key).encrypt(PLAINTEXT, associated_data=AD) for key in (KEY_A, KEY_B)]
    ring = AESGCMCipher(KEY_C, old_keys=iter([KEY_A, KEY_B]))
    for blob in blobs:
        assert ring.decrypt(blob, associated_data=AD) == PLAINTEXT
        assert ring.needs_rotation(blob)


def test_current_key_blob_needs_no_rotation() -> None:
    """A ciphertext under the current key is up to date, with or without old keys."""
    for cipher in (AESGCMCipher(KEY_A), AESGCMCipher(KEY_A, old_keys=[KEY_B])):
        assert not cipher.needs_rotation(cipher.encrypt(PLAINTEXT, associated_data=AD))


def test_unknown_key_id_fails_naming_the_key_id_only() -> None:
    """A ciphertext under a key the ring lacks names its key id, but no key and no plaintext."""
    foreign = AESGCMCipher(KEY_C)
    blob = foreign.encrypt(PLAINTEXT, associated_data=AD)
    ring = AESGCMCipher(KEY_A, old_keys=[KEY_B])
    with pytest.raises(CipherError, match="does not have") as caught:
        ring.decrypt(blob, associated_data=AD)
    message = str(caught.value)
    assert f"key id {foreign.fingerprints()[0]}" in message
    assert_reveals_no_key(message, KEY_A, KEY_B, KEY_C)
    assert PLAINTEXT.decode() not in message
    assert ring.needs_rotation(blob)


# --- the 0.1.0 format ----------------------------------------------------------------------


def test_legacy_format_decrypts() -> None:
    """A 0.1.0 ``nonce || ciphertext || tag`` opens under the current or an old key."""
    blob = legacy_ciphertext(KEY_A, PLAINTEXT, AD, os.urandom(12))
    for cipher in (AESGCMCipher(KEY_A), AESGCMCipher(KEY_B, old_keys=[KEY_C, KEY_A])):
        assert cipher.decrypt(blob, associated_data=AD) == PLAINTEXT
        assert cipher.needs_rotation(blob)
        with pytest.raises(CipherError):
            cipher.decrypt(blob, associated_data=b"mallory")


def test_legacy_format_whose_nonce_looks_like_the_magic_decrypts() -> None:
    """A 0.1.0 ciphertext whose random nonce happens to start with b"tc1" still opens."""
    blob = legacy_ciphertext(KEY_A, PLAINTEXT, AD, b"tc1" + os.urandom(9))
    cipher = AESGCMCipher(KEY_B, old_keys=[KEY_A])
    assert cipher.decrypt(blob, associated_data=AD) == PLAINTEXT
    assert cipher.needs_rotation(blob)


# --- fingerprints and repr -----------------------------------------------------------------


def test_fingerprints_are_stable_distinct_and_current_first() -> None:
    """The same key always has the same fingerprint; the ring lists the current key first."""
    ring = AESGCMCipher(KEY_A, old_keys=[KEY_B, KEY_C])
    alone = [AESGCMCipher(key).fingerprints()[0] for key in (KEY_A, KEY_B, KEY_C)]
    assert ring.fingerprints() == tuple(alone)
    assert AESGCMCipher(KEY_A).fingerprints() == (alone[0],)
    assert len(set(alone)) == 3
    assert AESGCMCipher(KEY_B, old_keys=[KEY_A]).fingerprints() == (alone[1], alone[0])


def test_fingerprint_is_a_mac_of_a_fixed_label() -> None:
    """A fingerprint is the documented truncated HMAC, 16 lowercase hex digits."""
    for key in (KEY_A, os.urandom(16), os.urandom(24)):
        (fingerprint,) = AESGCMCipher(key).fingerprints()
        expected = hmac.new(key, b"totpcore key fingerprint v1", "sha256").hexdigest()[:16]
        assert fingerprint == expected
        assert len(fingerprint) == 16
        assert fingerprint == fingerprint.lower()
        int(fingerprint, 16)


def test_fingerprint_does_not_reveal_the_key() -> None:
    """No fingerprint is a substring of its key's hex."""
    for key in (KEY_A, KEY_B, KEY_C, bytes(32), *(os.urandom(32) for _ in range(20))):
        (fingerprint,) = AESGCMCipher(key).fingerprints()
        assert fingerprint not in key.hex()


def test_repr_shows_fingerprints_only() -> None:
    """The repr names the current fingerprint and counts old keys, revealing no key."""
    single = AESGCMCipher(KEY_A)
    ring = AESGCMCipher(KEY_A, old_keys=[KEY_B])
    two_old = AESGCMCipher(KEY_A, old_keys=[KEY_B, KEY_C])
    assert repr(single) == f"AESGCMCipher(<current {single.fingerprints()[0]}, no old keys>)"
    assert repr(ring) == f"AESGCMCipher(<current {ring.fingerprints()[0]}, 1 old key>)"
    assert repr(two_old) == f"AESGCMCipher(<current {two_old.fingerprints()[0]}, 2 old keys>)"
    for cipher in (single, ring, two_old):
        assert_reveals_no_key(repr(cipher), KEY_A, KEY_B, KEY_C)
        assert_reveals_no_key(str(cipher), KEY_A, KEY_B, KEY_C)


def test_is_a_secret_cipher() -> None:
    """AESGCMCipher satisfies the runtime-checkable SecretCipher protocol."""
    assert isinstance(AESGCMCipher(KEY_A), SecretCipher)
    assert isinstance(AESGCMCipher(KEY_A, old_keys=[KEY_B]), SecretCipher)


def test_protocol_requires_fingerprints() -> None:
    """An object with encrypt and decrypt but no fingerprints is not a SecretCipher."""

    class NoFingerprints:
        """A cipher that predates fingerprints."""

        def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
            """Return the plaintext unchanged."""
            return plaintext

        def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> bytes:
            """Return the ciphertext unchanged."""
            return ciphertext

    assert not isinstance(NoFingerprints(), SecretCipher)


# --- bad arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33, 64])
def test_bad_key_size_is_refused(size: int) -> None:
    """A current or old key of the wrong length raises InvalidParameterError."""
    # A fixed byte, not a random one: a random 1-byte key's hex is sometimes "16", "24" or
    # "32", which the message rightly contains, and the leak check would fail by chance.
    key = b"\xa5" * size
    with pytest.raises(InvalidParameterError) as caught:
        AESGCMCipher(key)
    if size:
        assert_reveals_no_key(str(caught.value), key)
    with pytest.raises(InvalidParameterError, match=r"old_keys\[1\]"):
        AESGCMCipher(KEY_A, old_keys=[KEY_B, key])


@pytest.mark.parametrize("key", ["0" * 32, bytearray(32), memoryview(bytes(32)), 32, None])
def test_bad_key_type_is_refused(key: object) -> None:
    """A current or old key that is not bytes raises TypeError."""
    with pytest.raises(TypeError):
        AESGCMCipher(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AESGCMCipher(KEY_A, old_keys=[key])  # type: ignore[list-item]


def test_single_key_as_old_keys_is_refused() -> None:
    """Passing one key as old_keys (instead of a list of keys) raises TypeError."""
    with pytest.raises(TypeError, match="iterable of keys"):
        AESGCMCipher(KEY_A, old_keys=KEY_B)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "old_keys"),
    [(KEY_A, [KEY_A]), (KEY_A, [KEY_B, KEY_B]), (KEY_A, [KEY_B, KEY_C, KEY_A])],
)
def test_duplicate_keys_are_refused(key: bytes, old_keys: list[bytes]) -> None:
    """A key given twice, as current and old or twice as old, raises InvalidParameterError."""
    with pytest.raises(InvalidParameterError, match="twice") as caught:
        AESGCMCipher(key, old_keys=old_keys)
    assert_reveals_no_key(str(caught.value), KEY_A, KEY_B, KEY_C)


def test_missing_cryptography_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the cryptography package the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(MissingDependencyError, match=r"totpcore\[crypto\]") as caught:
        AESGCMCipher(KEY_A)
    assert isinstance(caught.value, ImportError)
    assert "pip install 'totpcore[crypto]'" in str(caught.value)
