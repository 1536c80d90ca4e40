"""Values as the JSON a ``jq`` user expects, for everything the CLI prints as JSON.

The store's own JSON tags values with ``__flujo_type__`` (and contexts with
``__type__``) so that a process with the pipeline's code gets the same Python types
back. Someone reading the CLI's output wants the data instead: an attrs class,
dataclass or pydantic model as an object of its fields, an enum as its value, tuples
and sets as lists, datetimes as ISO text. The class name, when it helps, goes
beside the value (:func:`type_name`), never inside it. Nothing here imports or
resolves a class: it only reads the objects it is given.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

#: Deeper than this, a value is cut short (a cycle, or nesting no reader wants).
MAX_DEPTH = 200


def _is_pydantic(value: object) -> bool:
    return callable(getattr(value, "model_dump", None)) and callable(
        getattr(type(value), "model_validate", None)
    )


def _key(key: Any) -> str:
    """JSON object keys are text: enum keys by value, other non-text keys as JSON."""
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return key
    try:
        return json.dumps(plain_json(key), sort_keys=True)
    except (TypeError, ValueError):
        return repr(key)


def plain_json(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data (dicts, lists, text, numbers, booleans, null).

    Decimals become numbers (costs are read as numbers), non-finite floats their
    text (``"nan"``: JSON has no such number), bytes base64 text, and anything
    without a JSON form its ``repr``.
    """
    if depth > MAX_DEPTH:
        return "..."
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):  # before int and str: IntEnum, StrEnum
        return plain_json(value.value, depth + 1)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {_key(k): plain_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item, depth + 1) for item in value]
    if isinstance(value, set | frozenset):
        items = [plain_json(item, depth + 1) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    cls = type(value)
    if attrs.has(cls):
        return {f.name: plain_json(getattr(value, f.name), depth + 1) for f in attrs.fields(cls)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain_json(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    if _is_pydantic(value):
        try:
            return plain_json(value.model_dump(mode="json"), depth + 1)
        except Exception:
            return repr(value)
    return repr(value)


def type_name(value: Any) -> str | None:
    """The class name to print beside ``value``'s JSON form, when that form hides it:
    for attrs classes, dataclasses, pydantic models and enums (None otherwise)."""
    cls = type(value)
    if (
        attrs.has(cls)
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        or isinstance(value, enum.Enum)
        or _is_pydantic(value)
    ):
        return cls.__qualname__
    return None


def dumps(document: Any, *, indent: int | None = None) -> str:
    """One JSON document as the CLI prints it (``ensure_ascii`` off: text stays text)."""
    return json.dumps(document, ensure_ascii=False, indent=indent, allow_nan=False)
