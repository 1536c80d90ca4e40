"""JSON Schema for what providers must send back, and whether it can be sent as strict.

pydantic's ``TypeAdapter`` writes the schema of everything pydantic knows; attrs
classes (which pydantic does not know) get the small hand-written one here. OpenAI's
strict structured-output mode accepts only a subset of JSON Schema, so
:func:`strict_schema` tightens what it can and says when the schema must go
non-strict instead of being refused by the provider with a 400.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

import attrs

from ..errors import ConfigurationError

#: Keywords OpenAI's strict mode accepts (its "supported schemas" list).
_STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "description",
        "title",
        "format",
        "pattern",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    }
)


def contains_attrs(tp: Any) -> bool:
    """Whether an attrs class appears anywhere in ``tp`` (then cattrs structures it)."""
    if attrs.has(tp):
        return True
    return any(contains_attrs(arg) for arg in typing.get_args(tp) if arg is not Ellipsis)


def attrs_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a type built from attrs classes and plain types."""
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        fields = attrs.fields(tp)
        return {
            "type": "object",
            "title": tp.__name__,
            "properties": {f.name: attrs_schema(hints[f.name]) for f in fields},
            "required": [f.name for f in fields],
            "additionalProperties": False,
        }
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [attrs_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple and args and args[-1] is not Ellipsis:
        # A fixed tuple: one schema per position, and exactly that many items.
        items = [attrs_schema(arg) for arg in args]
        return {
            "type": "array",
            "prefixItems": items,
            "minItems": len(items),
            "maxItems": len(items),
        }
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        return {"type": "array", "items": attrs_schema(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object", "additionalProperties": attrs_schema(args[1]) if args else {}}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [member.value for member in tp]}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if tp in simple:
        return {"type": simple[tp]}
    if tp is type(None) or tp is None:
        return {"type": "null"}
    if tp is Any:
        return {}
    raise ConfigurationError(
        f"no JSON schema for {tp!r} inside an attrs output type: use attrs classes and "
        "plain types there, or a pydantic model / dataclass for the whole output"
    )


def is_object(schema: dict[str, Any]) -> bool:
    """An object with named properties (what strict mode needs at the root)."""
    return schema.get("type") == "object" and "properties" in schema


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``schema`` tightened for strict mode, and whether strict mode can take it.

    Strict mode wants every object closed (``additionalProperties: false``) with all
    of its properties required; a field that has a default is then simply always
    sent. A map (``dict[str, X]``), a fixed tuple (``prefixItems``) or any keyword
    outside the supported list keeps the schema as it was, sent non-strict.
    """
    tightened = _tighten(schema)
    if tightened is None:
        return schema, False
    return tightened, True


def _tighten(node: Any) -> Any:
    if isinstance(node, list):
        items = [_tighten(item) for item in node]
        return None if any(item is None for item in items) else items
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue  # every property is required in strict mode: a default never applies
        if key not in _STRICT_KEYWORDS:
            return None
        if key == "additionalProperties":
            if value is not False:
                return None
            out[key] = False
        elif key in ("properties", "$defs"):
            inner = {name: _tighten(sub) for name, sub in value.items()}
            if any(sub is None for sub in inner.values()):
                return None
            out[key] = inner
        elif key in ("items", "anyOf"):
            inner_value = _tighten(value)
            if inner_value is None:
                return None
            out[key] = inner_value
        else:
            out[key] = value
    if not any(key in out for key in ("type", "anyOf", "$ref", "enum", "const")):
        return None  # an unconstrained value ({} for Any): strict mode needs a type
    if "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out
