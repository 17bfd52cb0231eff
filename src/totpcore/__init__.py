"""totpcore: RFC 6238 TOTP and RFC 4226 HOTP two-factor authentication.

The public API is re-exported here; each name lives in the module of its concept.
"""

from totpcore.cipher import AESGCMCipher, SecretCipher
from totpcore.errors import (
    CipherError,
    InvalidParameterError,
    InvalidSecretError,
    InvalidTimeError,
    InvalidURIError,
    MissingDependencyError,
    StoreError,
    TotpcoreError,
    UserStateError,
)
from totpcore.migration import MigrationBatch, build_migration_uris, parse_migration_uri
from totpcore.otp import HOTP, MAX_LOOK_AHEAD, MAX_WINDOW, TOTP, Match, hotp
from totpcore.policy import MAX_LOCKOUT_FAILURES, Policy
from totpcore.secret import (
    MAX_SECRET_LENGTH,
    MIN_KEY_BYTES,
    decode_secret,
    encode_secret,
    generate_secret,
)
from totpcore.service import MAX_CODE_LENGTH, MAX_USER_ID_LENGTH, Provisioning, TwoFactor
from totpcore.stores import MemoryStore, SQLiteStore, Status, Store, UserRecord
from totpcore.uri import MAX_URI_LENGTH, OTPAuthURI, build_uri, parse_uri
from totpcore.verdict import Reason, Verdict

__all__ = [
    "HOTP",
    "MAX_CODE_LENGTH",
    "MAX_LOCKOUT_FAILURES",
    "MAX_LOOK_AHEAD",
    "MAX_SECRET_LENGTH",
    "MAX_URI_LENGTH",
    "MAX_USER_ID_LENGTH",
    "MAX_WINDOW",
    "MIN_KEY_BYTES",
    "TOTP",
    "AESGCMCipher",
    "CipherError",
    "InvalidParameterError",
    "InvalidSecretError",
    "InvalidTimeError",
    "InvalidURIError",
    "Match",
    "MemoryStore",
    "MigrationBatch",
    "MissingDependencyError",
    "OTPAuthURI",
    "Policy",
    "Provisioning",
    "Reason",
    "SQLiteStore",
    "SecretCipher",
    "Status",
    "Store",
    "StoreError",
    "TotpcoreError",
    "TwoFactor",
    "UserRecord",
    "UserStateError",
    "Verdict",
    "build_migration_uris",
    "build_uri",
    "decode_secret",
    "encode_secret",
    "generate_secret",
    "hotp",
    "parse_migration_uri",
    "parse_uri",
]


def __getattr__(name: str) -> str:
    """Read ``__version__`` from the installed package metadata, once asked for."""
    if name == "__version__":
        from importlib.metadata import version

        return version("totpcore")
    raise AttributeError(f"module 'totpcore' has no attribute {name!r}")
