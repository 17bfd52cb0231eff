"""totpcore: RFC 6238 TOTP and RFC 4226 HOTP two-factor authentication.

The public API is re-exported here; each name lives in the module of its concept.
"""

from totpcore.errors import (
    InvalidParameterError,
    InvalidSecretError,
    InvalidTimeError,
    InvalidURIError,
    TotpcoreError,
)
from totpcore.otp import HOTP, MAX_LOOK_AHEAD, MAX_WINDOW, TOTP, Match, hotp
from totpcore.secret import (
    MAX_SECRET_LENGTH,
    MIN_KEY_BYTES,
    decode_secret,
    encode_secret,
    generate_secret,
)
from totpcore.uri import MAX_URI_LENGTH, OTPAuthURI, build_uri, parse_uri

__all__ = [
    "HOTP",
    "MAX_LOOK_AHEAD",
    "MAX_SECRET_LENGTH",
    "MAX_URI_LENGTH",
    "MAX_WINDOW",
    "MIN_KEY_BYTES",
    "TOTP",
    "InvalidParameterError",
    "InvalidSecretError",
    "InvalidTimeError",
    "InvalidURIError",
    "Match",
    "OTPAuthURI",
    "TotpcoreError",
    "build_uri",
    "decode_secret",
    "encode_secret",
    "generate_secret",
    "hotp",
    "parse_uri",
]


def __getattr__(name: str) -> str:
    """Read ``__version__`` from the installed package metadata, once asked for."""
    if name == "__version__":
        from importlib.metadata import version

        return version("totpcore")
    raise AttributeError(f"module 'totpcore' has no attribute {name!r}")
