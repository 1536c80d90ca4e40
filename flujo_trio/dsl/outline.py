"""A pipeline's blocks for drawing it: leaves (agent and human steps) and groups (loops,
conditionals, parallel and map steps) holding lanes of blocks.

Each step kind builds its own block (``StepBase.outline()``), so drawing a pipeline
needs no knowledge of the kinds and no import of them: this module imports nothing
from the DSL, and the Mermaid text and the CLI's HTML page both render these blocks.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Literal

import attrs

LeafKind = Literal["agent", "human", "step"]
GroupKind = Literal["loop", "conditional", "parallel", "map"]


@attrs.frozen
class Leaf:
    """One step that does not contain others: an agent call or a human pause."""

    kind: LeafKind
    name: str
    fallbacks: tuple[str, ...] = ()
    """Names of the fallback chain, in the order they are tried."""


@attrs.frozen
class Lane:
    """A sequence of blocks run one after the other (a pipeline, a branch, a body)."""

    label: str | None
    blocks: tuple[Leaf | Group, ...]


@attrs.frozen
class Group:
    """A step that runs other steps: its lanes are its body or its branches."""

    kind: GroupKind
    name: str
    detail: str
    """What a reader needs to know about how the lanes run (``max 5 loops``, ...)."""
    lanes: tuple[Lane, ...]


Block = Leaf | Group


def key_label(key: Hashable) -> str:
    """A branch key as it is shown and stored (keys may be any hashable)."""
    return key if isinstance(key, str) else repr(key)
