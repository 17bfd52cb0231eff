"""totpcore: RFC 6238 TOTP and RFC 4226 HOTP two-factor authentication.

The public API is re-exported here; each name lives in the module of its concept and loads
on first use (only the exceptions load with the package), so ``import totpcore`` costs next to
nothing and loads neither ``sqlite3`` nor ``asyncio``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from totpcore._checks import MAX_USER_ID_LENGTH
    from totpcore._core import DEFAULT_KEY_CACHE_SIZE, MAX_CODE_LENGTH, MAX_KEY_CACHE_SIZE
    from totpcore.aio import AsyncTwoFactor
    from totpcore.cipher import AESGCMCipher, SecretCipher
    from totpcore.migration import MigrationBatch, build_migration_uris, parse_migration_uri
    from totpcore.otp import HOTP, MAX_LOOK_AHEAD, MAX_WINDOW, TOTP, Match, hotp
    from totpcore.policy import MAX_LOCKOUT_FAILURES, Policy
    from totpcore.provisioning import Provisioning
    from totpcore.secret import (
        MAX_SECRET_LENGTH,
        MIN_KEY_BYTES,
        decode_secret,
        encode_secret,
        generate_secret,
    )
    from totpcore.service import TwoFactor
    from totpcore.stores import (
        AsyncBulkInsert,
        AsyncMemoryStore,
        AsyncPostgresStore,
        AsyncRedisStore,
        AsyncSQLiteStore,
        AsyncStore,
        AsyncUserListing,
        BulkInsert,
        MarkRequest,
        MemoryStore,
        OneCommitCheck,
        PostgresStore,
        RedisStore,
        SQLiteStore,
        Status,
        Store,
        UserListing,
        UserRecord,
    )
    from totpcore.uri import MAX_URI_LENGTH, OTPAuthURI, build_uri, parse_uri
    from totpcore.verdict import Reason, Verdict

# Name -> module, for the names loaded on first use: importing the package costs next to
# nothing, and each concept loads when it is first used.
_LAZY = {
    "HOTP": "totpcore.otp",
    "MAX_LOOK_AHEAD": "totpcore.otp",
    "MAX_WINDOW": "totpcore.otp",
    "TOTP": "totpcore.otp",
    "Match": "totpcore.otp",
    "hotp": "totpcore.otp",
    "MAX_SECRET_LENGTH": "totpcore.secret",
    "MIN_KEY_BYTES": "totpcore.secret",
    "decode_secret": "totpcore.secret",
    "encode_secret": "totpcore.secret",
    "generate_secret": "totpcore.secret",
    "MAX_URI_LENGTH": "totpcore.uri",
    "OTPAuthURI": "totpcore.uri",
    "build_uri": "totpcore.uri",
    "parse_uri": "totpcore.uri",
    "Reason": "totpcore.verdict",
    "Verdict": "totpcore.verdict",
    "MAX_USER_ID_LENGTH": "totpcore._checks",
    "MAX_CODE_LENGTH": "totpcore._core",
    "DEFAULT_KEY_CACHE_SIZE": "totpcore._core",
    "MAX_KEY_CACHE_SIZE": "totpcore._core",
    "AsyncTwoFactor": "totpcore.aio",
    "AESGCMCipher": "totpcore.cipher",
    "SecretCipher": "totpcore.cipher",
    "MigrationBatch": "totpcore.migration",
    "build_migration_uris": "totpcore.migration",
    "parse_migration_uri": "totpcore.migration",
    "MAX_LOCKOUT_FAILURES": "totpcore.policy",
    "Policy": "totpcore.policy",
    "Provisioning": "totpcore.provisioning",
    "TwoFactor": "totpcore.service",
    "AsyncBulkInsert": "totpcore.stores",
    "AsyncMemoryStore": "totpcore.stores",
    "AsyncSQLiteStore": "totpcore.stores",
    "AsyncPostgresStore": "totpcore.stores",
    "AsyncRedisStore": "totpcore.stores",
    "PostgresStore": "totpcore.stores",
    "RedisStore": "totpcore.stores",
    "AsyncStore": "totpcore.stores",
    "AsyncUserListing": "totpcore.stores",
    "BulkInsert": "totpcore.stores",
    "MarkRequest": "totpcore.stores",
    "MemoryStore": "totpcore.stores",
    "OneCommitCheck": "totpcore.stores",
    "SQLiteStore": "totpcore.stores",
    "Status": "totpcore.stores",
    "Store": "totpcore.stores",
    "UserListing": "totpcore.stores",
    "UserRecord": "totpcore.stores",
}

__all__ = [
    "DEFAULT_KEY_CACHE_SIZE",
    "HOTP",
    "MAX_CODE_LENGTH",
    "MAX_KEY_CACHE_SIZE",
    "MAX_LOCKOUT_FAILURES",
    "MAX_LOOK_AHEAD",
    "MAX_SECRET_LENGTH",
    "MAX_URI_LENGTH",
    "MAX_USER_ID_LENGTH",
    "MAX_WINDOW",
    "MIN_KEY_BYTES",
    "TOTP",
    "AESGCMCipher",
    "AsyncBulkInsert",
    "AsyncMemoryStore",
    "AsyncPostgresStore",
    "AsyncRedisStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "AsyncTwoFactor",
    "AsyncUserListing",
    "BulkInsert",
    "CipherError",
    "InvalidParameterError",
    "InvalidSecretError",
    "InvalidTimeError",
    "InvalidURIError",
    "MarkRequest",
    "Match",
    "MemoryStore",
    "MigrationBatch",
    "MissingDependencyError",
    "OTPAuthURI",
    "OneCommitCheck",
    "Policy",
    "PostgresStore",
    "Provisioning",
    "Reason",
    "RedisStore",
    "SQLiteStore",
    "SecretCipher",
    "Status",
    "Store",
    "StoreError",
    "TotpcoreError",
    "TwoFactor",
    "UserListing",
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


def __getattr__(name: str) -> Any:
    """Load the service, stores and codecs on first use; read ``__version__`` when asked."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(import_module(module), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name == "__version__":
        from importlib.metadata import version

        return version("totpcore")
    raise AttributeError(f"module 'totpcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
