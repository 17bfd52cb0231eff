"""Pluggable ciphers that misbehave: every failure is a CipherError, and nothing is stored.

:class:`~totpcore.SecretCipher` is a protocol, so an application may bring its own (a KMS, an
HSM). The service must not trust it: a cipher that cannot name its keys, fails to encrypt, or
fails to decrypt is reported as :class:`~totpcore.CipherError` (its own totpcore errors pass
through unchanged), never as a raw exception, never as an acceptance, and never with a secret
written that nobody could read back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from totpcore import (
    TOTP,
    AESGCMCipher,
    CipherError,
    MemoryStore,
    Policy,
    Status,
    TwoFactor,
    UserRecord,
)
from totpcore.testing import FakeClock

pytest.importorskip("cryptography")

KEY = bytes(range(32))
FAST = Policy(recovery_iterations=1_000)


class PluggedCipher:
    """An application's own cipher: AES-GCM underneath, with injectable failures."""

    def __init__(self) -> None:
        self.inner = AESGCMCipher(KEY)
        self.name_keys: Callable[[], Any] = self.inner.fingerprints
        self.encrypt_error: Exception | None = None
        self.decrypt_error: Exception | None = None

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Encrypt, or raise the injected error."""
        if self.encrypt_error is not None:
            raise self.encrypt_error
        return self.inner.encrypt(plaintext, associated_data=associated_data)

    def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt, or raise the injected error."""
        if self.decrypt_error is not None:
            raise self.decrypt_error
        return self.inner.decrypt(ciphertext, associated_data=associated_data)

    def fingerprints(self) -> tuple[str, ...]:
        """Whatever the test makes it answer."""
        result: tuple[str, ...] = self.name_keys()
        return result


def _raise_lookup() -> tuple[str, ...]:
    raise LookupError("the KMS is unreachable")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_raise_lookup, r"failed to name its keys \(LookupError\)"),
        (lambda: (), "must return non-empty strings"),
        (lambda: ("",), "must return non-empty strings"),
        (lambda: (b"abc",), "must return non-empty strings"),
    ],
)
def test_a_cipher_that_cannot_name_its_keys_is_refused_at_construction(
    answer: Callable[[], Any], expected: str
) -> None:
    """fingerprints() raising, or returning no usable names: CipherError, nothing recorded."""
    store = MemoryStore()
    cipher = PluggedCipher()
    cipher.name_keys = answer
    with pytest.raises(CipherError, match=expected) as caught:
        TwoFactor(store, issuer="Example", cipher=cipher)
    assert "unreachable" not in str(caught.value)  # the cipher's own words are not repeated
    assert store.get_meta("cipher") is None


def test_encryption_failure_stores_nothing() -> None:
    """A cipher failing to encrypt: enable raises CipherError naming only the error's type."""
    store = MemoryStore()
    cipher = PluggedCipher()
    service = TwoFactor(store, issuer="Example", cipher=cipher, policy=FAST)
    cipher.encrypt_error = OSError("HSM slot 3 said SECRET-DETAIL")
    with pytest.raises(CipherError, match=r"failed to encrypt \(OSError\)") as caught:
        service.enable("alice")
    assert "SECRET-DETAIL" not in str(caught.value)
    assert service.status("alice") is Status.DISABLED
    with pytest.raises(CipherError):
        service.import_secret("bob", bytes(20))
    assert store.get("bob") is None


def test_a_ciphers_own_totpcore_errors_pass_through() -> None:
    """A cipher raising CipherError itself is not wrapped again, on encryption or decryption."""
    store = MemoryStore()
    cipher = PluggedCipher()
    clock = FakeClock()
    service = TwoFactor(store, issuer="Example", cipher=cipher, clock=clock, policy=FAST)
    own = CipherError("the KMS refused: key disabled")
    cipher.encrypt_error = own
    with pytest.raises(CipherError) as encrypting:
        service.enable("alice")
    assert encrypting.value is own
    cipher.encrypt_error = None
    service.enable("alice")
    cipher.decrypt_error = own
    fresh = TwoFactor(store, issuer="Example", cipher=cipher, clock=clock, key_cache_size=0)
    with pytest.raises(CipherError) as decrypting:
        fresh.begin_setup("alice")
    assert decrypting.value is own


def test_decryption_failure_is_a_cipher_error_never_an_acceptance() -> None:
    """A cipher that cannot decrypt (say, its KMS is down) makes verify raise, not accept."""
    store = MemoryStore()
    cipher = PluggedCipher()
    clock = FakeClock()
    service = TwoFactor(store, issuer="Example", cipher=cipher, clock=clock, policy=FAST)
    service.enable("alice")
    phone = TOTP.from_uri(service.begin_setup("alice").uri)
    assert service.complete_setup("alice", phone.generate(clock()))
    clock.advance(30)
    cipher.decrypt_error = TimeoutError("KMS timeout")
    fresh = TwoFactor(
        store, issuer="Example", cipher=cipher, clock=clock, policy=FAST, key_cache_size=0
    )
    with pytest.raises(CipherError, match=r"could not be decrypted \(TimeoutError\)"):
        fresh.verify("alice", phone.generate(clock()))
    cipher.decrypt_error = None
    assert fresh.verify("alice", phone.generate(clock()))


def test_legacy_store_still_refuses_a_ciphertext_neither_format_opens() -> None:
    """On a store migrated from 0.1.0, a secret that is neither format is a CipherError.

    The service tries the 0.1.0 binding after the current one fails; when that fails too the
    original failure (the cipher's own CipherError) is reported, and the code is not accepted.
    """
    store = MemoryStore()
    assert store.set_meta("legacy_ciphertexts", "possible", expected=None)
    clock = FakeClock()
    service = TwoFactor(store, issuer="Example", cipher=AESGCMCipher(KEY), clock=clock, policy=FAST)
    service.enable("alice")
    phone = TOTP.from_uri(service.begin_setup("alice").uri)
    assert service.complete_setup("alice", phone.generate(clock()))
    record = store.get("alice")
    assert record is not None
    # Another program overwrites the ciphertext with junk of the same length.
    garbled = UserRecord(**{**record._asdict(), "secret": bytes(len(record.secret))})
    assert store.replace(garbled, generation=record.generation)
    clock.advance(30)
    fresh = TwoFactor(
        store,
        issuer="Example",
        cipher=AESGCMCipher(KEY),
        clock=clock,
        policy=FAST,
        key_cache_size=0,
    )
    with pytest.raises(CipherError, match="failed authentication"):
        fresh.verify("alice", phone.generate(clock()))
