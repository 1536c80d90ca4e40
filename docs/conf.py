"""Sphinx configuration: Markdown pages (MyST), API reference from docstrings."""

from __future__ import annotations

import re
from typing import Any

import attrs

project = "flujo-trio"
author = "flujo-trio developers"
copyright = "2026, flujo-trio developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinxcontrib_trio",
    "sphinx_copybutton",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "flujo-trio"
html_static_path = ["_static"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
# Types in the signatures: "description" added a "Return type: None" field to every
# exception and constructor, which reads as noise.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# Members are listed page by page: a blanket "members" pulled in internal helpers.
autodoc_default_options: dict[str, object] = {}
napoleon_google_docstring = True
# Offline builds: intersphinx inventories are not fetched (no network in CI).
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
# The copy button copies commands, not prompts or the output shown after them.
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"
autodoc_type_aliases = {"Event": "Event"}


def _factory_shown(default: Any) -> str:
    """An empty container or attrs value as it reads in code, else the factory's call."""
    factory = default.factory
    if default.takes_self or not (attrs.has(factory) or factory in (list, dict, tuple, set)):
        return f"{getattr(factory, '__name__', 'factory')}()"
    built = factory()
    return f"{type(built).__name__}()" if attrs.has(type(built)) else repr(built)


def _readable_defaults(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, ret: str
) -> tuple[str | None, str]:
    """Signatures as a reader writes them: attrs factory defaults as what they build (not
    attrs' ``NOTHING``), classes and functions by name (not their repr)."""
    if signature is None:
        return signature, ret
    if what == "class" and getattr(obj, "_is_protocol", False):
        return "", ret  # a protocol is implemented, not called: no (*args, **kwargs)
    if what == "class" and attrs.has(obj):
        for field in attrs.fields(obj):
            default = field.default
            if field.init and isinstance(default, attrs.Factory):
                signature = signature.replace("= NOTHING", f"= {_factory_shown(default)}", 1)
    signature = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", signature)
    signature = re.sub(r"<built-in function (\w+)>", r"\1", signature)
    signature = re.sub(r"~(?:\w+\.)*(\w+)", r"\1", signature)  # short names, no "~" marks
    return signature, ret


def _keep_attribute_colons(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Napoleon reads an attribute docstring's first line "text: more" as "type: text";
    ours are prose with types in annotations, so an empty comment goes first."""
    if what == "attribute" and lines and ":" in lines[0]:
        lines[:0] = ["..", ""]


def setup(app: Any) -> None:
    app.connect("autodoc-process-signature", _readable_defaults)
    # Before napoleon (priority 500) rewrites the docstring.
    app.connect("autodoc-process-docstring", _keep_attribute_colons, priority=400)
