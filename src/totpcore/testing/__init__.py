"""Test helpers for applications that use totpcore, and for stores written for it.

- :class:`StoreContract` and :class:`AsyncStoreContract`: the suites every store must pass,
  run by inheritance with pytest (see :mod:`totpcore.testing.contract`).
- :class:`FakeClock`: a clock to inject into a service, moved by hand.
- :class:`Blocking`: calls an async service or store from synchronous test code.

This package is for test suites: it needs pytest, and the library never imports it.
"""

from __future__ import annotations

try:
    import pytest  # noqa: F401 - checked here so the message names what to install
except ImportError as error:  # pragma: no cover - exercised in a subprocess without pytest
    from totpcore.errors import MissingDependencyError

    raise MissingDependencyError(
        "totpcore.testing is a pytest suite and needs pytest: pip install pytest"
    ) from error

from totpcore.testing.blocking import Blocking
from totpcore.testing.clock import FakeClock
from totpcore.testing.contract import AsyncStoreContract, StoreContract

__all__ = ["AsyncStoreContract", "Blocking", "FakeClock", "StoreContract"]
