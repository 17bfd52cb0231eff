"""Encryption of stored secrets: the :class:`SecretCipher` protocol and an AES-GCM adapter.

With a cipher configured, :class:`~totpcore.TwoFactor` hands the store only ciphertext. The user
id is bound to each ciphertext as associated data, so a secret copied into another user's
record fails to decrypt instead of working there.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

from totpcore.errors import CipherError, InvalidParameterError, MissingDependencyError

__all__ = ["AESGCMCipher", "SecretCipher"]


@runtime_checkable
class SecretCipher(Protocol):
    """Authenticated encryption of secrets at rest.

    ``decrypt`` must fail (raise any exception) when the ciphertext was altered or the
    associated data differs; the service reports that as :class:`~totpcore.CipherError`.
    """

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Return ciphertext for ``plaintext``, bound to ``associated_data``."""
        ...

    def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> bytes:
        """Return the plaintext, or raise if it was altered or bound to other data."""
        ...


class AESGCMCipher:
    """AES-256-GCM with a random 96-bit nonce per secret (needs ``totpcore[crypto]``).

    Args:
        key: 32 bytes from a secret manager or ``os.urandom(32)``; keep it out of the database.

    Raises:
        InvalidParameterError: ``key`` is not 16, 24 or 32 bytes.
        MissingDependencyError: the ``cryptography`` package is not installed.
    """

    _NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError("key must be bytes")
        if len(key) not in (16, 24, 32):
            raise InvalidParameterError("AES-GCM keys are 16, 24 or 32 bytes")
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as error:
            raise MissingDependencyError(
                "AESGCMCipher needs the cryptography package: pip install 'totpcore[crypto]'"
            ) from error
        self._aead: Any = AESGCM(key)

    def __repr__(self) -> str:
        return "AESGCMCipher(<key hidden>)"

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Return ``nonce || ciphertext || tag``."""
        nonce = os.urandom(self._NONCE_BYTES)
        sealed: bytes = self._aead.encrypt(nonce, plaintext, associated_data)
        return nonce + sealed

    def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> bytes:
        """Open ``nonce || ciphertext || tag``; raise CipherError if it does not authenticate."""
        from cryptography.exceptions import InvalidTag

        nonce, sealed = ciphertext[: self._NONCE_BYTES], ciphertext[self._NONCE_BYTES :]
        try:
            opened: bytes = self._aead.decrypt(nonce, sealed, associated_data)
        except (InvalidTag, ValueError) as error:
            raise CipherError("stored secret failed authentication") from error
        return opened
