"""Secrets at rest: sealing under the cipher, opening, and the per-user HMAC state cache.

No I/O: the cipher is computation, and what the store remembers about it arrives as
arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from totpcore._engine import Keyed
from totpcore.cipher import SecretCipher
from totpcore.errors import CipherError, InvalidParameterError, TotpcoreError
from totpcore.stores.protocol import UserRecord

__all__ = [
    "CIPHER_SETTING",
    "DEFAULT_KEY_CACHE_SIZE",
    "LEGACY_SETTING",
    "LOCKOUT_SETTING",
    "MAX_KEY_CACHE_SIZE",
    "PLAINTEXT",
    "Keys",
]

#: Store setting (``Store.get_meta``) naming the key fingerprint, or :data:`PLAINTEXT`.
CIPHER_SETTING = "cipher"
#: Store setting that says 0.1.0 ciphertexts (bound to the user id only) may be present.
LEGACY_SETTING = "legacy_ciphertexts"
#: Store setting holding the strictest ``lockout_failures`` of the services on the store.
LOCKOUT_SETTING = "lockout_failures"
PLAINTEXT = "none"
_LEGACY_POSSIBLE = "possible"
_LEGACY_REWRITTEN = "rewritten"
#: How many users' HMAC states a service keeps by default (about 0.8 KB each).
DEFAULT_KEY_CACHE_SIZE = 4096
#: The largest key cache a service accepts (about 8 GB at 0.8 KB per user).
MAX_KEY_CACHE_SIZE = 10_000_000


class Keys:
    """The service's view of stored secrets: seal, open, and keyed HMAC state per user.

    Args:
        cipher: The service's cipher, or ``None``.
        cache_size: How many users' keys to keep decrypted and precomputed; 0 for none.
    """

    def __init__(
        self, cipher: SecretCipher | None, *, cache_size: int = DEFAULT_KEY_CACHE_SIZE
    ) -> None:
        if cipher is not None and not isinstance(cipher, SecretCipher):
            raise TypeError("cipher must implement the totpcore SecretCipher protocol")
        if type(cache_size) is not int:
            raise TypeError("key_cache_size must be an int")
        if not 0 <= cache_size <= MAX_KEY_CACHE_SIZE:
            raise InvalidParameterError(
                f"key_cache_size must be from 0 to {MAX_KEY_CACHE_SIZE:,}, got {cache_size}"
            )
        self.cipher = cipher
        self.legacy = False
        # Decrypting a secret and precomputing its HMAC pads costs more than the verify; keyed
        # by the stored bytes, user, generation and parameters, so a new secret can never hit
        # an old entry.
        self.keyed: Callable[[str, bytes, int, str, int], Keyed] = lru_cache(maxsize=cache_size)(
            self._build
        )

    # --- what the store remembers --------------------------------------------------------

    def setting(self) -> str:
        """What a new store should remember about this service's cipher."""
        return PLAINTEXT if self.cipher is None else self.fingerprints()[0]

    def accept_setting(self, known: str, legacy: str | None) -> None:
        """Refuse a cipher that cannot read the store; note whether 0.1.0 secrets may remain.

        The first service on a new store records whether its secrets are encrypted, and under
        which key (a fingerprint, never the key). A service with no key, or the wrong one, then
        fails at construction, once, instead of failing every user (or writing secrets nobody
        can read).
        """
        cipher = self.cipher
        if cipher is None and known != PLAINTEXT:
            raise CipherError(
                f"the store's secrets are encrypted (key fingerprint {known}); "
                "configure the service with that key"
            )
        if cipher is not None and known == PLAINTEXT:
            raise CipherError("the store holds unencrypted secrets; a cipher cannot be added to it")
        if cipher is not None and known not in self.fingerprints():
            raise CipherError(
                f"the store's secrets are encrypted under key fingerprint {known}, "
                "which this cipher does not have"
            )
        self.legacy = legacy == _LEGACY_POSSIBLE

    def refresh_legacy(self, legacy: str | None) -> None:
        """Follow the store's legacy flag: once another process rotated, stop at once.

        The key cache is emptied too: a key opened from a 0.1.0 ciphertext must not outlive
        the flag that allowed it.
        """
        if self.legacy and legacy != _LEGACY_POSSIBLE:
            self.legacy = False
            self.keyed.cache_clear()  # type: ignore[attr-defined]

    def require_cipher(self) -> None:
        """Refuse key rotation without a cipher."""
        if self.cipher is None:
            raise CipherError("rotate_key needs a service configured with a cipher")

    def rotated(self) -> None:
        """Every secret is now bound to user and generation: stop accepting 0.1.0 ones.

        The key cache is emptied too, as :meth:`refresh_legacy` does in the other servers: a
        key this server opened from a 0.1.0 ciphertext must not outlive the rotation (one
        planted in a record before it would otherwise stay usable here).
        """
        self.legacy = False
        self.keyed.cache_clear()  # type: ignore[attr-defined]

    def rotated_settings(self) -> tuple[str, str | None]:
        """The settings to store after every secret was re-encrypted: fingerprint, legacy flag."""
        return self.setting(), (_LEGACY_REWRITTEN if self.legacy else None)

    def fingerprints(self) -> tuple[str, ...]:
        """The cipher's key fingerprints, current first; checked, since ciphers are pluggable."""
        if self.cipher is None:
            return ()
        try:
            fingerprints = tuple(self.cipher.fingerprints())
        except Exception as error:
            raise CipherError(
                f"the cipher failed to name its keys ({type(error).__name__})"
            ) from error
        if not fingerprints or not all(isinstance(item, str) and item for item in fingerprints):
            raise CipherError("the cipher's fingerprints() must return non-empty strings")
        return fingerprints

    # --- secrets -------------------------------------------------------------------------

    def seal(self, key: bytes, user_id: str, generation: int) -> bytes:
        """Encrypt a key for storage when a cipher is configured, bound to user and generation."""
        cipher = self.cipher
        if cipher is None:
            return key
        try:
            return cipher.encrypt(key, associated_data=associated_data(user_id, generation))
        except TotpcoreError:
            raise
        except Exception as error:
            raise CipherError(f"the cipher failed to encrypt ({type(error).__name__})") from error

    def open(self, secret: bytes, user_id: str, generation: int) -> bytes:
        """Decrypt a stored secret (plain stores keep it as is)."""
        cipher = self.cipher
        if cipher is None:
            return secret
        try:
            return cipher.decrypt(secret, associated_data=associated_data(user_id, generation))
        except Exception as error:
            opened = self._open_legacy(secret, user_id)
            if opened is not None:
                return opened
            if isinstance(error, TotpcoreError):
                raise
            raise CipherError(
                f"the stored secret could not be decrypted ({type(error).__name__})"
            ) from error

    def reseal(self, record: UserRecord) -> bytes:
        """The record's secret encrypted afresh under the current key (key rotation)."""
        key = self.open(record.secret, record.user_id, record.generation)
        return self.seal(key, record.user_id, record.generation)

    def keyed_of(self, record: UserRecord) -> Keyed:
        """The user's HMAC state, with the parameters they enrolled with."""
        return self.keyed(
            record.user_id, record.secret, record.generation, record.algorithm, record.digits
        )

    def _open_legacy(self, secret: bytes, user_id: str) -> bytes | None:
        """Read a secret 0.1.0 wrote, where the store says such secrets may remain.

        0.1.0 bound a ciphertext to the user id only. Accepted only on a store migrated from
        0.1.0, until every secret has been rewritten (key rotation); then never again, so a
        pre-reset ciphertext put back by someone with write access to the store stays dead.
        """
        if not self.legacy or self.cipher is None:
            return None
        try:
            return self.cipher.decrypt(secret, associated_data=user_id.encode("utf-8"))
        except Exception:
            return None

    def _build(
        self, user_id: str, secret: bytes, generation: int, algorithm: str, digits: int
    ) -> Keyed:
        """Decrypt a stored secret and precompute its HMAC state (memoised by ``keyed``)."""
        return Keyed(self.open(secret, user_id, generation), digits=digits, algorithm=algorithm)


def associated_data(user_id: str, generation: int) -> bytes:
    """What a ciphertext is bound to: one user's one enrolment.

    A ciphertext copied to another user, or put back after a reset (which draws a new
    generation), fails to decrypt.
    """
    return b"totpcore/2\0%s\0%d" % (user_id.encode("utf-8"), generation)
