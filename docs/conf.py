"""Sphinx configuration for the totpcore documentation."""

from __future__ import annotations

import enum
import inspect
import re
import sys
from importlib.metadata import version as _version
from typing import Any

from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

project = "totpcore"
author = "The totpcore authors"
copyright = "2026, The totpcore authors"
release = _version("totpcore")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# No default options: a default "members" would override the explicit member lists the API
# pages give (autodoc replaces a directive's list with a boolean default), and a default
# "show-inheritance" prints "Bases: object" under most classes. The pages ask for bases where
# they say something (exceptions, the async contract).
autodoc_default_options: dict[str, str | bool] = {}
# Signatures show defaults as written in the source: ``policy=Policy()`` and
# ``clock=time.time``, not the repr of every field or ``<built-in function time>``.
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"totpcore {release}"
exclude_patterns = ["_build"]

_log = logging.getLogger(__name__)


def _is_private(dotted: str) -> bool:
    """Whether a dotted name has a private part (``totpcore._core``, ``_Base``)."""
    return any(part.startswith("_") for part in dotted.split("."))


def _source_comment(modname: str, attr: str, value: object) -> list[str] | None:
    """The ``#:`` comment of the module that defines ``attr`` (the package re-exports it).

    The package root loads its names on first use, so a constant documented as
    ``totpcore.MIN_KEY_BYTES`` has no comment in ``totpcore/__init__.py``: the comment is
    beside the assignment in the module of its concept.
    """
    candidates = sorted(
        name for name in sys.modules if name == modname or name.startswith("totpcore.")
    )
    for name in candidates:
        module = sys.modules[name]
        if getattr(module, attr, None) is not value:
            continue
        try:
            analyzer = ModuleAnalyzer.for_module(name)
            analyzer.analyze()
        except Exception:  # noqa: S112 - a module without source has no comment
            continue
        comment = analyzer.attr_docs.get(("", attr))
        if comment:
            return list(comment)
    return None


def _document_constants(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Give a re-exported constant its ``#:`` comment; refuse one that has none.

    Without this, autodoc shows the docstring of the value's type (``int()``'s, for a number).
    """
    if what != "data" or not name.startswith("totpcore."):
        return
    modname, _, attr = name.rpartition(".")
    type_doc = inspect.getdoc(type(obj))
    if type_doc is None or inspect.getdoc(obj) != type_doc:
        return  # the object has a docstring of its own, or the comment was found already
    own = inspect.cleandoc(type_doc).splitlines()
    if [line.strip() for line in lines if line.strip()] != [
        line.strip() for line in own if line.strip()
    ]:
        return  # autodoc found the comment in the documented module itself
    comment = _source_comment(modname, attr, obj)
    if comment is None:
        _log.warning("%s has no #: comment in its source", name, type="totpcore")
        lines[:] = []
    else:
        lines[:] = comment


def _public_bases(app: Sphinx, name: str, obj: object, options: Any, bases: list[type]) -> None:
    """Leave ``object`` and private helper classes out of "Bases:" lines."""
    bases[:] = [
        base
        for base in bases
        if base is not object
        and not _is_private(f"{getattr(base, '__module__', '')}.{base.__qualname__}")
    ]


# A private type variable (``_P``, ``_T``) as it appears in a recorded annotation.
_PRIVATE_TYPE_VARIABLE = re.compile(r"(?<![\w.])_(?=[A-Z]\w*)")


def _public_type_variables(
    app: Sphinx, what: str, name: str, obj: object, options: Any, args: str, retann: str
) -> None:
    """Show a type variable such as ``_P`` as ``P`` in the types listed under each call."""
    document = getattr(app.env, "current_document", None)
    if document is not None:
        recorded = document.autodoc_annotations
    else:  # Sphinx before 8.2
        recorded = app.env.temp_data.get("annotations", {})
    annotations = recorded.get(name)
    if annotations:
        for key, text in annotations.items():
            annotations[key] = _PRIVATE_TYPE_VARIABLE.sub("", text)


def _protocol_signature(
    app: Sphinx, what: str, name: str, obj: object, options: Any, args: str, retann: str
) -> tuple[str, str] | None:
    """Show a protocol or an enum without the arguments no caller ever passes."""
    if what == "class" and (getattr(obj, "_is_protocol", False) or isinstance(obj, enum.EnumMeta)):
        return "", ""
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Connect the hooks that keep the rendered API readable."""
    app.connect("autodoc-process-docstring", _document_constants)
    app.connect("autodoc-process-bases", _public_bases)
    # After autodoc has recorded the annotations (its own handler runs first).
    app.connect("autodoc-process-signature", _public_type_variables, priority=900)
    app.connect("autodoc-process-signature", _protocol_signature)
    return {"parallel_read_safe": True}
