"""The exceptions totpcore raises on purpose.

Every one of them derives from :class:`TotpcoreError`, so a host application can catch the
library's failures with one ``except`` clause. Those about a bad value also derive from
:class:`ValueError`. Passing a value of the wrong *type* (an ``int`` where a code string belongs)
raises the built-in :class:`TypeError` instead: that is a programming error, not bad input.

::

    TotpcoreError
    ├── InvalidSecretError      (ValueError)  a base32 secret or key that cannot be used
    ├── InvalidURIError         (ValueError)  an otpauth:// URI that cannot be built or parsed
    ├── InvalidParameterError   (ValueError)  digits, algorithm, period, t0, window, counter, bits
    ├── InvalidTimeError        (ValueError)  NaN, infinity, negative, naive or before t0
    ├── UserStateError                        an admin or setup call in the wrong lifecycle state
    ├── StoreError                            the store failed; the operation did not happen
    ├── CipherError                           a stored secret could not be decrypted
    └── MissingDependencyError  (ImportError) an optional extra is not installed

No message ever contains a secret, a key or a whole URI (which carries the secret).
"""

from __future__ import annotations

__all__ = [
    "CipherError",
    "InvalidParameterError",
    "InvalidSecretError",
    "InvalidTimeError",
    "InvalidURIError",
    "MissingDependencyError",
    "StoreError",
    "TotpcoreError",
    "UserStateError",
]


class TotpcoreError(Exception):
    """Base class of every exception totpcore raises on purpose."""


class InvalidSecretError(TotpcoreError, ValueError):
    """A base32 secret or a raw key is malformed, non-canonical or too short."""


class InvalidURIError(TotpcoreError, ValueError):
    """An ``otpauth://`` URI is malformed, or its fields cannot be encoded as one."""


class InvalidParameterError(TotpcoreError, ValueError):
    """An option such as ``digits``, ``algorithm``, ``period`` or ``window`` is out of range."""


class InvalidTimeError(TotpcoreError, ValueError):
    """A time is NaN, infinite, negative, a naive ``datetime``, or earlier than ``t0``."""


class UserStateError(TotpcoreError):
    """A lifecycle call does not fit the user's state (e.g. reset before setup is complete)."""


class StoreError(TotpcoreError):
    """The store failed. The operation did not take effect, and nothing was accepted."""


class CipherError(TotpcoreError):
    """A stored secret could not be decrypted (wrong key, tampering, or another user's record)."""


class MissingDependencyError(TotpcoreError, ImportError):
    """An optional extra is needed; the message names the ``pip install`` command."""
