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
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

VECTORS = Path(__file__).parent / "vectors"

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


def services_required() -> bool:
    """Return True when missing programs and servers must fail tests instead of skipping them."""
    return os.environ.get("TOTPCORE_REQUIRE_SERVICES", "") not in ("", "0")


def require_program(name: str) -> str:
    """Return the path of program ``name``; skip, or fail under TOTPCORE_REQUIRE_SERVICES=1."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {name})"
        if services_required():
            pytest.fail(message + "; TOTPCORE_REQUIRE_SERVICES=1 forbids skipping")
        pytest.skip(message)
    return path


def load_vectors(name: str) -> dict[str, Any]:
    """Load one of the RFC vector files kept in tests/vectors."""
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def key() -> bytes:
    """A fixed 160-bit key, as most tests need one and its value does not matter."""
    return bytes(range(1, 21))
