"""What sits at a step path, read from a pipeline's shape (plain JSON, no code).

Run events and stored step trees carry names, not kinds. The views need kinds to say
the right thing about each step (a loop's iterations, not ``attempts=0``) and the
declared order to draw branches the same way every time, whatever order they
happened to start in. Every run stores its shape, so a stored run is drawn from it
without importing the pipeline; a live run uses the shape of the pipeline it runs.
A shape this module does not understand just yields no answers.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any

import attrs

#: Kinds whose results count calls made (everything else is a container or a person).
CALLING_KINDS = ("step",)
FAN_OUT_PARTS = ("branch", "item")
_ITEM_INDEX = re.compile(r"\[(\d+)\]$")


@attrs.frozen
class Place:
    """What the shape says about one path."""

    kind: str | None = None
    """``step``, ``human``, ``loop``, ``conditional``, ``parallel``, ``map``, ``branch``
    (a parallel step's branch), ``item`` (a map step's item), or None when unknown."""
    children: tuple[str, ...] | None = None
    """The names of the steps directly inside, in declared order (None: unknown, or
    the items of a map, which are ordered by their index)."""
    only_step: str | None = None
    """For a branch or item whose body is one step: that step's name."""


UNKNOWN = Place()


def _label(segment: Hashable) -> str:
    return segment if isinstance(segment, str) else repr(segment)


def _nodes(value: Any) -> list[dict[str, Any]]:
    return [node for node in value if isinstance(node, dict)] if isinstance(value, list) else []


def _names(nodes: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(str(node.get("name")) for node in nodes)


def _body_place(kind: str, body: list[dict[str, Any]]) -> Place:
    names = _names(body)
    return Place(kind, names, names[0] if len(names) == 1 else None)


class Shape:
    """A pipeline's stored shape, asked about paths."""

    def __init__(self, shape: Any) -> None:
        self._root = _nodes(shape) if isinstance(shape, list) else None

    def at(self, path: Sequence[Hashable]) -> Place:
        """The place at ``path`` (step names, branch keys and item names from the top)."""
        if self._root is None:
            return UNKNOWN
        try:
            return self._walk(path)
        except (TypeError, ValueError, KeyError, AttributeError):
            return UNKNOWN

    def _walk(self, path: Sequence[Hashable]) -> Place:
        assert self._root is not None
        nodes: list[dict[str, Any]] = self._root
        fan_out: dict[str, Any] | None = None  # a parallel or map step: next is a branch/item
        place = Place(None, _names(nodes))
        for segment in path:
            label = _label(segment)
            if fan_out is not None:
                if fan_out.get("kind") == "parallel":
                    body = next(
                        (b for k, b in fan_out.get("branches", []) if k == label),
                        None,
                    )
                    if body is None:
                        return UNKNOWN
                    nodes = _nodes(body)
                    place = _body_place("branch", nodes)
                else:
                    nodes = _nodes(fan_out.get("body"))
                    place = _body_place("item", nodes)
                fan_out = None
                continue
            node = next((n for n in nodes if n.get("name") == label), None)
            if node is None:
                return UNKNOWN
            kind = node.get("kind")
            if kind == "parallel":
                fan_out = node
                labels = tuple(str(k) for k, _ in node.get("branches", []))
                place, nodes = Place(kind, labels), []
            elif kind == "map":
                fan_out = node
                place, nodes = Place(kind, None), []
            elif kind == "loop":
                nodes = _nodes(node.get("body"))
                place = Place(kind, _names(nodes))
            elif kind == "conditional":
                nodes = [n for _, body in node.get("branches", []) for n in _nodes(body)]
                nodes += _nodes(node.get("default"))
                place = Place(kind, tuple(dict.fromkeys(_names(nodes))))
            else:
                place, nodes = Place(str(kind) if kind is not None else None, ()), []
        return place


def order_key(place: Place, name: Hashable, arrival: int) -> tuple[int, int, int]:
    """Sort key of a child ``name`` of ``place``: declared order, then a map item's
    index, then the order it was seen in (for anything the shape does not know)."""
    label = _label(name)
    declared = place.children or ()
    position = declared.index(label) if label in declared else len(declared)
    found = _ITEM_INDEX.search(label)
    return position, int(found.group(1)) if found else 0, arrival
