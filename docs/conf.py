"""Sphinx configuration: Markdown pages (MyST), API reference from docstrings."""

from __future__ import annotations

project = "flujo-trio"
author = "flujo-trio developers"
copyright = "2026, flujo-trio developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinxcontrib_trio",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "flujo-trio"
html_static_path = ["_static"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
# Offline builds: intersphinx inventories are not fetched (no network in CI).
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
