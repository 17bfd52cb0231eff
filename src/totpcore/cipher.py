"""Encryption of stored secrets: the :class:`SecretCipher` protocol and an AES-GCM keyring.

With a cipher configured, :class:`~totpcore.TwoFactor` hands the store only ciphertext.

Associated data:
    The service chooses the associated data bound to each ciphertext: the user id and the
    record's generation. A ciphertext therefore opens only for one user's one enrolment; copied
    into another user's record, or replayed into a later enrolment of the same user, it fails
    to decrypt instead of working there.

Keyring:
    :class:`AESGCMCipher` holds one *current* key, which encrypts every new secret, and any
    number of *old* keys, which are still accepted for decryption. Each key is known by its
    fingerprint: the first 16 hex digits of ``HMAC-SHA256(key, b"totpcore key fingerprint
    v1")``. A fingerprint identifies a key without revealing it, so it may be logged, shown to
    an operator and kept in the database.

Format:
    A ciphertext is ``b"tc1" || key id || nonce || AES-GCM ciphertext || tag``, where the key
    id is the 8 bytes of the encrypting key's fingerprint, the nonce is 12 random bytes and the
    tag is 16 bytes (39 bytes on top of the plaintext). The key id selects the key to decrypt
    with; a ciphertext under a key the ring does not hold fails with
    :class:`~totpcore.CipherError` naming that key id. Anything not starting with ``b"tc1"`` is
    read as the 0.1.0 format, ``nonce || ciphertext || tag``, and every key in the ring is
    tried.

Rotation:
    1. Deploy the new key as the current key, with the old key in ``old_keys``, to every
       process that uses the store. Until all run it, some still encrypt under the old key,
       which is why the old key must stay readable everywhere.
    2. Run ``totpcore admin rotate-key`` (:meth:`totpcore.TwoFactor.rotate_key`): it
       re-encrypts every record under the current key, each with a compare-and-set, so it can
       run while the service does, and be interrupted and run again.
    3. Drop the old key from ``old_keys`` and destroy it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from totpcore.errors import CipherError, InvalidParameterError, MissingDependencyError

__all__ = ["AESGCMCipher", "SecretCipher"]

_MAGIC = b"tc1"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = len(_MAGIC) + _KEY_ID_BYTES
_FINGERPRINT_LABEL = b"totpcore key fingerprint v1"
_KEY_SIZES = (16, 24, 32)


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

    def fingerprints(self) -> tuple[str, ...]:
        """Return short identifiers of the keys this cipher decrypts with, the current key first.

        A store remembers the current key's fingerprint, so a service started with the wrong
        key fails when it is constructed instead of on the first user's sign-in. Fingerprints
        are not secret and are stored, logged and shown; one must therefore never reveal its
        key (derive it as a MAC of a fixed label under the key, never as a prefix or plain hash
        of the key itself).

        Returns:
            One non-empty string per key; the first belongs to the key ``encrypt`` uses.
        """
        ...


def _fingerprint(key: bytes) -> str:
    """Return the public fingerprint of ``key``: a truncated HMAC of a fixed label."""
    return hmac.new(key, _FINGERPRINT_LABEL, "sha256").hexdigest()[: 2 * _KEY_ID_BYTES]


def _check_key(key: object, name: str) -> bytes:
    """Return ``key`` if it is usable as an AES-GCM key, else raise without echoing it."""
    if not isinstance(key, bytes):
        raise TypeError(f"{name} must be bytes, not {type(key).__name__}")
    if len(key) not in _KEY_SIZES:
        raise InvalidParameterError(f"{name} must be 16, 24 or 32 bytes, not {len(key)}")
    return key


class AESGCMCipher:
    """A keyring of AES-GCM keys with a random 96-bit nonce per secret (``totpcore[crypto]``).

    Every secret is encrypted under ``key``; ciphertexts under any of ``old_keys``, or in the
    0.1.0 format, still decrypt. :meth:`fingerprints` and ``repr`` identify the keys without
    revealing them.

    Args:
        key: The current key: 32 bytes (16 and 24 are accepted) from a secret manager or
            ``os.urandom(32)``; keep it out of the database.
        old_keys: Earlier keys still accepted for decryption while records are re-encrypted
            under ``key`` (see the module documentation on rotation).

    Raises:
        TypeError: A key is not ``bytes``, or ``old_keys`` is a single key instead of an
            iterable of keys.
        InvalidParameterError: A key is not 16, 24 or 32 bytes, or a key appears twice.
        MissingDependencyError: The ``cryptography`` package is not installed.
    """

    def __init__(self, key: bytes, *, old_keys: Iterable[bytes] = ()) -> None:
        if isinstance(old_keys, bytes | bytearray | memoryview | str):
            raise TypeError("old_keys must be an iterable of keys, not a single key")
        keys = [_check_key(key, "key")]
        keys.extend(_check_key(old, f"old_keys[{index}]") for index, old in enumerate(old_keys))
        fingerprints = tuple(_fingerprint(each) for each in keys)
        # Distinct keys with one fingerprint (a 64-bit collision) would make the key id
        # ambiguous, so they are refused along with true duplicates.
        seen: set[str] = set()
        for fingerprint in fingerprints:
            if fingerprint in seen:
                raise InvalidParameterError(
                    f"the same key is given twice (fingerprint {fingerprint})"
                )
            seen.add(fingerprint)
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as error:
            raise MissingDependencyError(
                "AESGCMCipher needs the cryptography package: pip install 'totpcore[crypto]'"
            ) from error
        self._invalid_tag: type[Exception] = InvalidTag
        self._fingerprints = fingerprints
        # In ring order, current first: the order keys are tried for the 0.1.0 format.
        self._ring: dict[bytes, Any] = {
            bytes.fromhex(fingerprint): AESGCM(each)
            for fingerprint, each in zip(fingerprints, keys, strict=True)
        }
        self._current_id = bytes.fromhex(fingerprints[0])
        self._current: Any = self._ring[self._current_id]

    def __repr__(self) -> str:
        old = len(self._fingerprints) - 1
        olds = "no old keys" if old == 0 else f"{old} old key{'s' if old > 1 else ''}"
        return f"AESGCMCipher(<current {self._fingerprints[0]}, {olds}>)"

    def fingerprints(self) -> tuple[str, ...]:
        """Return the fingerprints of the ring's keys, the current key first.

        Returns:
            16 hex digits per key: ``HMAC-SHA256(key, b"totpcore key fingerprint v1")``
            truncated, which identifies the key without revealing it.
        """
        return self._fingerprints

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Encrypt ``plaintext`` under the current key, bound to ``associated_data``.

        Args:
            plaintext: The secret to protect.
            associated_data: Data the ciphertext is bound to; ``decrypt`` needs the same.

        Returns:
            ``b"tc1" || key id || nonce || ciphertext || tag``.
        """
        nonce = os.urandom(_NONCE_BYTES)
        sealed: bytes = self._current.encrypt(nonce, plaintext, associated_data)
        return _MAGIC + self._current_id + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, associated_data: bytes) -> bytes:
        """Decrypt a ciphertext from :meth:`encrypt` or from totpcore 0.1.0.

        Args:
            ciphertext: The stored bytes.
            associated_data: The data the ciphertext was bound to when it was encrypted.

        Returns:
            The plaintext.

        Raises:
            CipherError: The ciphertext is under a key the ring does not hold, was altered, is
                truncated, or was bound to other associated data.
        """
        if ciphertext[: len(_MAGIC)] != _MAGIC:
            return self._decrypt_legacy(ciphertext, associated_data)
        key_id = ciphertext[len(_MAGIC) : _HEADER_BYTES]
        aead = self._ring.get(key_id)
        if aead is None:
            # A 0.1.0 ciphertext starts with b"tc1" when its random nonce does (one in 2**24),
            # so read it that way before reporting a missing key.
            try:
                return self._decrypt_legacy(ciphertext, associated_data)
            except CipherError:
                pass
            raise CipherError(
                "the stored secret was encrypted under a key this cipher does not have"
                f" (key id {key_id.hex()})"
            ) from None
        return self._open(aead, ciphertext[_HEADER_BYTES:], associated_data)

    def needs_rotation(self, ciphertext: bytes) -> bool:
        """Tell whether ``ciphertext`` should be re-encrypted under the current key.

        Only the header is read; nothing is authenticated (``decrypt`` does that).

        Args:
            ciphertext: The stored bytes.

        Returns:
            True for the 0.1.0 format and for ciphertexts under any key but the current one.
        """
        return (
            ciphertext[: len(_MAGIC)] != _MAGIC
            or ciphertext[len(_MAGIC) : _HEADER_BYTES] != self._current_id
        )

    def _decrypt_legacy(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Open a 0.1.0 ``nonce || ciphertext || tag`` with each key of the ring in turn."""
        if len(ciphertext) < _NONCE_BYTES + _TAG_BYTES:
            raise CipherError("stored secret is truncated")
        for aead in self._ring.values():
            try:
                return self._open(aead, ciphertext, associated_data)
            except CipherError:
                continue
        raise CipherError("stored secret failed authentication")

    def _open(self, aead: Any, body: bytes, associated_data: bytes) -> bytes:
        """Open ``nonce || ciphertext || tag`` with one key; raise CipherError on any failure."""
        if len(body) < _NONCE_BYTES + _TAG_BYTES:
            raise CipherError("stored secret is truncated")
        nonce, sealed = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
        try:
            opened: bytes = aead.decrypt(nonce, sealed, associated_data)
        except (self._invalid_tag, ValueError) as error:
            raise CipherError("stored secret failed authentication") from error
        return opened
