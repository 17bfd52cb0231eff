"""Sphinx configuration for the totpcore documentation."""

from importlib.metadata import version as _version

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
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"totpcore {release}"
exclude_patterns = ["_build"]
