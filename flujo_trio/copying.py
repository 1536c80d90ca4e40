"""Deep copies that are cheap for the values pipelines mostly hold, and never silently live.

``copy.deepcopy`` costs microseconds even for ``None`` inside a small object; at
10,000 branches that is most of a fan-out. Atoms are returned as they are, plain
lists and dicts are copied here with the same memo (so shared references stay
shared), and everything else goes to ``copy.deepcopy`` with that memo. A value that
cannot be copied raises :class:`SerializationError` naming it: a "copy" that is
really the live object would let a later step change what was saved.
"""

from __future__ import annotations

import copy
import enum
from typing import Any, TypeVar

from .errors import SerializationError

T = TypeVar("T")

_ATOMS = frozenset({type(None), bool, int, float, str, bytes, complex})


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    cls = type(value)
    if cls in _ATOMS or isinstance(value, enum.Enum):
        return value
    found = memo.get(id(value))
    if found is not None:
        return found
    if cls is list:
        copied_list: list[Any] = []
        memo[id(value)] = copied_list
        memo.setdefault(id(memo), []).append(value)  # keep alive, as deepcopy does
        copied_list.extend(_copy(item, memo) for item in value)
        return copied_list
    if cls is dict:
        copied_dict: dict[Any, Any] = {}
        memo[id(value)] = copied_dict
        memo.setdefault(id(memo), []).append(value)
        for key, item in value.items():
            copied_dict[_copy(key, memo)] = _copy(item, memo)
        return copied_dict
    if cls is tuple and all(type(item) in _ATOMS for item in value):
        return value
    return copy.deepcopy(value, memo)


def deep_copy(value: T, *, what: str = "a value") -> T:
    """A real deep copy of ``value``; :class:`SerializationError` when it cannot be made."""
    if type(value) in _ATOMS:
        return value
    try:
        return _copy(value, {})  # type: ignore[no-any-return]
    except RecursionError as error:
        raise SerializationError(f"Cannot copy {what}: it is nested too deeply") from error
    except Exception as error:
        raise SerializationError(
            f"Cannot copy {what} ({type(error).__name__}: {error}): keep only copyable "
            "values (no locks, clients or open files) in outputs and the context, or give "
            "the class a __deepcopy__"
        ) from error


def copy_attrs_fields(instance: T, *, what: str = "a value") -> T:
    """A deep copy of an attrs instance built field by field (the fast path for contexts)."""
    cls = type(instance)
    fields = getattr(cls, "__attrs_attrs__", None)
    if fields is None or hasattr(instance, "__deepcopy__") or hasattr(instance, "__dict__"):
        return deep_copy(instance, what=what)
    memo: dict[int, Any] = {}
    setter = object.__setattr__
    try:
        clone = object.__new__(cls)
        memo[id(instance)] = clone
        for field in fields:
            value = getattr(instance, field.name)
            if type(value) not in _ATOMS:
                value = _copy(value, memo)
            setter(clone, field.name, value)
    except RecursionError as error:
        raise SerializationError(f"Cannot copy {what}: it is nested too deeply") from error
    except Exception as error:
        raise SerializationError(
            f"Cannot copy {what} ({type(error).__name__}: {error}): keep only copyable "
            "values in the context"
        ) from error
    return clone
