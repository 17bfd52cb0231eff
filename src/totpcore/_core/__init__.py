"""The sans-IO decision core shared by the sync and async service shells.

Nothing here performs I/O or awaits: the shells (:mod:`totpcore.service`, :mod:`totpcore.aio`)
ask the store and hand the answers back.
"""

from totpcore._core.decide import (
    MAX_CODE_LENGTH,
    Activate,
    Check,
    Consume,
    Core,
    MarkUsed,
    Resync,
)
from totpcore._core.keys import (
    CIPHER_SETTING,
    DEFAULT_KEY_CACHE_SIZE,
    LEGACY_SETTING,
    LOCKOUT_SETTING,
    MAX_KEY_CACHE_SIZE,
)

__all__ = [
    "CIPHER_SETTING",
    "DEFAULT_KEY_CACHE_SIZE",
    "LEGACY_SETTING",
    "LOCKOUT_SETTING",
    "MAX_CODE_LENGTH",
    "MAX_KEY_CACHE_SIZE",
    "Activate",
    "Check",
    "Consume",
    "Core",
    "MarkUsed",
    "Resync",
]
