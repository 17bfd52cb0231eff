"""The public surface: what the package root exports, and the shape of the error tree."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import totpcore
from totpcore import errors

SOURCE = Path(totpcore.__file__).parent


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions, each A-Z."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_sorted() -> None:
    """__all__ is sorted, constants first, then classes, then functions."""
    assert totpcore.__all__ == sorted(totpcore.__all__, key=_isort_key)
    assert len(set(totpcore.__all__)) == len(totpcore.__all__)


def test_all_is_complete() -> None:
    """Every name a public module lists in its own __all__ is re-exported from the root."""
    exported = set(totpcore.__all__)
    for path in [*SOURCE.glob("*.py"), *SOURCE.glob("stores/*.py")]:
        # Test suite, command line, QR (an optional extra) and vector data stay in their modules.
        if path.name.startswith("_") or path.stem in {
            "testing",
            "cli",
            "cli_admin",
            "qr",
            "vectors",
        }:
            continue
        dotted = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
        module = __import__(dotted, fromlist=["__all__"])
        missing = set(getattr(module, "__all__", ())) - exported
        # Type aliases, protocol plumbing and the schema number stay in their modules.
        missing -= {"Time", "Window", "Attempt", "Limits", "SCHEMA_VERSION", "delay_after"}
        missing -= {"describe_drift", "MAX_MIGRATION_URI_LENGTH"}
        missing -= {"DEFAULT_PREFIX", "DEFAULT_TABLE"}  # store defaults, in their modules
        assert not missing, f"{dotted} exports {missing} that the root does not"


def test_every_export_exists_and_is_documented() -> None:
    """Each exported name resolves and its object (or module) carries a docstring."""
    for name in totpcore.__all__:
        value = getattr(totpcore, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


BAD_VALUE_ERRORS = {
    "InvalidSecretError",
    "InvalidURIError",
    "InvalidParameterError",
    "InvalidTimeError",
}


def test_error_tree() -> None:
    """All errors derive from TotpcoreError; exactly the bad-value ones also from ValueError."""
    for name in errors.__all__:
        error = getattr(totpcore, name)
        assert issubclass(error, totpcore.TotpcoreError)
        assert issubclass(error, ValueError) == (name in BAD_VALUE_ERRORS), name
    assert issubclass(totpcore.MissingDependencyError, ImportError)


def test_version_comes_from_metadata() -> None:
    """__version__ is the installed distribution's version, not a second hard-coded copy."""
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", totpcore.__version__)
    with pytest.raises(AttributeError):
        _ = totpcore.no_such_name


def test_library_imports_only_the_standard_library() -> None:
    """No module of the package imports a third-party package at import time.

    totpcore.testing is the exception by design: it is a pytest suite for host applications.
    """
    import sys

    allowed = set(sys.stdlib_module_names) | {"totpcore", "__future__"}
    for path in SOURCE.rglob("*.py"):
        if "testing" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Module-level statements only: lazy imports inside functions are how extras load.
        tops = [
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0)
            for alias in node.names
        ]
        for top in (name.split(".")[0] for name in tops):
            assert top in allowed, f"{path.name} imports {top} at module level"
