"""Shared fixtures: each store, each service shell, a fixed key.

Helpers that tests call directly (programs, vectors, PNG and QR tools, the service factory)
live in ``tests/helpers.py`` and are imported from there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Re-exported for test modules that still import them from here; new code imports helpers.
from helpers import (
    SHELLS,
    Clock,
    MakeService,
    ServiceFactory,
    load_vectors,
    png_from_matrix,
    require_program,
    services_required,
    zbar_decode,
)
from totpcore import MemoryStore, SQLiteStore, Store

__all__ = [
    "Clock",
    "load_vectors",
    "png_from_matrix",
    "require_program",
    "services_required",
    "zbar_decode",
]

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each built-in store in turn, new and empty."""
    if request.param == "memory":
        yield MemoryStore()
    else:
        sqlite = SQLiteStore(tmp_path / "store.sqlite3")
        yield sqlite
        sqlite.close()


@pytest.fixture(params=SHELLS)
def shell(request: pytest.FixtureRequest) -> str:
    """Each service shell in turn: ``"sync"`` (TwoFactor) and ``"async"`` (AsyncTwoFactor)."""
    name: str = request.param
    return name


@pytest.fixture
def make_service(store: Store, shell: str) -> Iterator[MakeService]:
    """A factory ``make(**options)`` of services on the test's store, through the test's shell.

    Sync: ``TwoFactor(store, **options)``. Async: an AsyncTwoFactor on an async twin of the
    store, through a Blocking view (typed as TwoFactor). Every event loop and async store it
    opened is closed at teardown.
    """
    with ServiceFactory(store, shell) as factory:
        yield factory


@pytest.fixture(scope="session")
def key() -> bytes:
    """A fixed 160-bit key, as most tests need one and its value does not matter."""
    return bytes(range(1, 21))
