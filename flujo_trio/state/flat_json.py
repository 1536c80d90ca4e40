"""JSON values nested deeper than the json module can walk, as a flat list of tokens.

A pipeline's shape nests four JSON levels per parallel or conditional step, and both
``json.dumps`` and ``json.loads`` recurse once per level: a pipeline a few hundred
containers deep could run but not be stored (or, stored, not be read back). Its
tokens, in document order: a list is ``["l", n]`` followed by its ``n`` items, an
object ``["d", n]`` followed by ``n`` key/value pairs, and a scalar is itself (a
scalar is never a list, so the two cannot be confused). The text of the tokens is
two levels deep whatever the value.
"""

from __future__ import annotations

from typing import Any

_LIST, _DICT = "l", "d"


def flatten(value: Any) -> list[Any]:
    """The tokens of a JSON value (lists, dicts with string keys, scalars)."""
    tokens: list[Any] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            tokens.append([_LIST, len(item)])
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            tokens.append([_DICT, len(item)])
            for key, inner in reversed(item.items()):
                stack += (inner, key)
        else:
            tokens.append(item)
    return tokens


class _Open:
    """A container being filled: how many tokens it still takes, and a pending key."""

    __slots__ = ("container", "key", "left")

    def __init__(self, container: list[Any] | dict[str, Any], left: int) -> None:
        self.container = container
        self.left = left
        self.key: str | None = None

    def put(self, value: Any) -> None:
        if isinstance(self.container, list):
            self.container.append(value)
        elif self.key is None:
            if not isinstance(value, str):
                raise ValueError(f"an object key must be a string, got {value!r:.60}")
            self.key = value
        else:
            self.container[self.key] = value
            self.key = None
        self.left -= 1


def unflatten(tokens: Any) -> Any:
    """The value of ``tokens``; ValueError when they are not a whole, well-formed value."""
    if not isinstance(tokens, list) or not tokens:
        raise ValueError("flat JSON must be a non-empty list of tokens")
    result: list[Any] = []
    stack = [_Open(result, 1)]
    for token in tokens:
        if not stack:
            raise ValueError("flat JSON has tokens after its value")
        value: Any = token
        inner: _Open | None = None
        if isinstance(token, list):
            kind, count = token if len(token) == 2 else (None, None)
            if kind not in (_LIST, _DICT) or type(count) is not int or count < 0:
                raise ValueError(f"not a flat JSON container token: {token!r:.60}")
            value = [] if kind == _LIST else {}
            inner = _Open(value, count if kind == _LIST else 2 * count)
        elif isinstance(token, dict):
            raise ValueError("flat JSON holds no objects, only tokens")
        top = stack[-1]
        top.put(value)
        if top.left == 0:
            stack.pop()
        if inner is not None and inner.left:
            stack.append(inner)
    if stack:
        raise ValueError("flat JSON ends before its value does")
    return result[0]
