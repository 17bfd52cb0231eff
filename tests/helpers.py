"""Helpers shared by the test modules, imported as ``from helpers import ...``.

``conftest.py`` holds fixtures only; anything a test module calls directly lives here.

Outside programs (``oathtool``, ``zbarimg``; servers in later suites) are optional on a
developer's machine, where a test that needs a missing one is skipped with the reason. With
``TOTPCORE_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing program is a failure instead, so
CI can never pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

import pytest

from totpcore import (
    AsyncMemoryStore,
    AsyncSQLiteStore,
    AsyncStore,
    AsyncTwoFactor,
    MemoryStore,
    SQLiteStore,
    Store,
    TwoFactor,
)
from totpcore.testing import Blocking, FakeClock

__all__ = [
    "SHELLS",
    "VECTORS",
    "Clock",
    "FakeClock",
    "MakeService",
    "ServiceFactory",
    "load_vectors",
    "png_from_matrix",
    "require_program",
    "services_required",
    "zbar_decode",
]

VECTORS = Path(__file__).parent / "vectors"

#: The two service shells every service test runs on.
SHELLS = ("sync", "async")

#: The old name of :class:`totpcore.testing.FakeClock`, for modules not yet migrated.
Clock = FakeClock


def services_required() -> bool:
    """Return True when missing programs and servers must fail tests instead of skipping them."""
    return os.environ.get("TOTPCORE_REQUIRE_SERVICES", "") not in ("", "0")


def require_program(name: str, package: str | None = None) -> str:
    """Return the path of program ``name``; skip, or fail under TOTPCORE_REQUIRE_SERVICES=1."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {package or name})"
        if services_required():
            pytest.fail(message + "; TOTPCORE_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    return path


def load_vectors(name: str) -> dict[str, Any]:
    """Load one of the RFC vector files kept in tests/vectors."""
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def png_from_matrix(matrix: list[list[bool]], path: Path, scale: int = 4) -> None:
    """Write a black-and-white PNG of a module matrix, written here with zlib alone."""
    height, width = len(matrix) * scale, len(matrix[0]) * scale
    rows = b""
    for row in matrix:
        line = b"\x00" + bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows += line * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def zbar_decode(path: Path) -> str:
    """Decode the QR code in an image with zbarimg (Debian: zbar-tools)."""
    zbarimg = require_program("zbarimg", "zbar-tools")
    result = subprocess.run(
        [zbarimg, "--raw", "--quiet", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"zbarimg could not read {path.name}"
    return result.stdout.rstrip("\n")


# --- services on both shells ---------------------------------------------------------------


class MakeService(Protocol):
    """The ``make_service`` fixture: ``make(**options)`` is ``TwoFactor(store, **options)``."""

    def __call__(self, **options: Any) -> TwoFactor:
        """Build a service on the test's store, through the test's shell."""
        ...


class ServiceFactory:
    """Builds services on one sync store through one shell, and closes what it opened.

    ``"sync"`` builds ``TwoFactor(store, ...)``. ``"async"`` builds an
    :class:`~totpcore.AsyncTwoFactor` on an async twin of the store (an
    :class:`~totpcore.AsyncMemoryStore` around the same MemoryStore, or an
    :class:`~totpcore.AsyncSQLiteStore` of its own on the same file), seen through
    :class:`~totpcore.testing.Blocking` so that the same synchronous test code drives it. The
    async service is typed as a TwoFactor: both shells have the same methods.

    Args:
        store: A :class:`~totpcore.MemoryStore` (or subclass) or a
            :class:`~totpcore.SQLiteStore`.
        shell: ``"sync"`` or ``"async"``.
    """

    def __init__(self, store: Store, shell: str) -> None:
        if shell not in SHELLS:
            raise ValueError(f"shell must be one of {SHELLS}, not {shell!r}")
        self.store = store
        self.shell = shell
        self._closers: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"ServiceFactory({self.store!r}, {self.shell!r})"

    def __call__(self, **options: Any) -> TwoFactor:
        """Build a service on the store; ``options`` are TwoFactor's keyword arguments."""
        if self.shell == "sync":
            return TwoFactor(self.store, **options)
        service = AsyncTwoFactor(self.twin(), **options)
        blocking = Blocking(service)
        self._closers.append(blocking.close)
        return cast(TwoFactor, blocking)

    def twin(self) -> AsyncStore:
        """A new async store over the same records, closed with this factory."""
        if isinstance(self.store, SQLiteStore):
            twin = AsyncSQLiteStore(self.store.path)
            self._closers.append(twin.close)
            return twin
        if isinstance(self.store, MemoryStore):
            return AsyncMemoryStore(self.store)
        raise TypeError(f"no async twin for {type(self.store).__name__}")

    def close(self) -> None:
        """Stop every event loop and close every store this factory opened, newest first."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> ServiceFactory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
