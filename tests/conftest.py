"""Shared fixtures: RFC vectors, a fixed key, and access to outside programs.

Outside programs (``oathtool`` here; servers in later suites) are optional on a developer's
machine, where a test that needs a missing one is skipped with the reason. With
``TOTPCORE_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing program is a failure instead, so
CI can never pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from totpcore import MemoryStore, SQLiteStore, Store

VECTORS = Path(__file__).parent / "vectors"

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


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


class Clock:
    """An injectable clock that tests (and the threads of one test) move by hand."""

    def __init__(self, now: float = 1_700_000_010.0) -> None:
        self.now = now

    def __call__(self) -> float:
        """Return the current test time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each built-in store in turn, new and empty."""
    if request.param == "memory":
        yield MemoryStore()
    else:
        sqlite = SQLiteStore(tmp_path / "store.sqlite3")
        yield sqlite
        sqlite.close()


@pytest.fixture(scope="session")
def key() -> bytes:
    """A fixed 160-bit key, as most tests need one and its value does not matter."""
    return bytes(range(1, 21))


def png_from_matrix(matrix: list[list[bool]], path: Path, scale: int = 4) -> None:
    """Write a black-and-white PNG of a module matrix, written here with zlib alone."""
    import struct
    import zlib

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
    import subprocess

    zbarimg = require_program("zbarimg", "zbar-tools")
    result = subprocess.run(
        [zbarimg, "--raw", "--quiet", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"zbarimg could not read {path.name}"
    return result.stdout.rstrip("\n")
