"""JSON Schema for attrs classes, for providers' structured-output modes."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import attrs

from ..errors import ConfigurationError


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema a reply must match to structure into ``tp``."""
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        fields = attrs.fields(tp)
        return {
            "type": "object",
            "title": tp.__name__,
            "properties": {f.name: json_schema(hints[f.name]) for f in fields},
            "required": [f.name for f in fields],
            "additionalProperties": False,
        }
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        return {"type": "array", "items": json_schema(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1]) if args else {}}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if tp in simple:
        return {"type": simple[tp]}
    if tp is type(None) or tp is None:
        return {"type": "null"}
    if tp is Any:
        return {}
    raise ConfigurationError(f"no JSON schema for {tp!r}: use attrs classes and plain types")
