"""The one cattrs converter for everything flujo-trio stores, and the rule that data
never chooses code.

- Typed fields follow their types: enums are stored by value and come back as
  members, ``datetime`` as ISO text, ``Decimal`` as text, sets as lists, dicts with
  int or enum keys keep their keys.
- A :class:`PipelineContext` (or any subclass) is stored with a ``__type__`` tag
  naming its class, and comes back as that class with all its fields.
- Values typed ``Any`` (step outputs, metadata) keep their own type through a
  ``__flujo_type__`` tag when JSON alone would lose it (tuples, sets, enums,
  datetimes, decimals, bytes, UUIDs, attrs classes, dataclasses, pydantic models).
- Non-finite floats, and anything else that is not storable, fail with a
  :class:`SerializationError` naming the field path.

Which classes a tag may name (nothing is ever imported because data names it):

1. classes registered with :func:`register` (also a class decorator);
2. classes this process has serialized itself;
3. the types a runner declares (its context type, human steps' ``input_type``), and
   classes defined at the top of the modules the pipeline's own callables and
   context come from, when those modules are already imported (see
   :func:`allowing`, which the runner enters around every load).

Anything else is a :class:`SerializationError` that names the class and says how to
register it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import sys
import types
import uuid
from collections import Counter
from collections.abc import (
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableSequence,
    MutableSet,
    Sequence,
)
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.preconf.json import JsonConverter, configure_converter
from cattrs.v import format_exception

from .context import HumanInteraction, PipelineContext, RunStatus
from .errors import HumanInputError, SerializationError
from .usage import Usage, UsageLimits

T = TypeVar("T")

CONTEXT_TAG = "__type__"
VALUE_TAG = "__flujo_type__"


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# -- which classes stored data may name -----------------------------------------------


def _is_value_class(cls: object) -> bool:
    """Classes whose instances the converter can rebuild from their fields."""
    return isinstance(cls, type) and (
        attrs.has(cls)
        or dataclasses.is_dataclass(cls)
        or issubclass(cls, enum.Enum)
        or _is_pydantic(cls)
    )


def _is_pydantic(cls: type) -> bool:
    return callable(getattr(cls, "model_validate", None)) and callable(
        getattr(cls, "model_dump", None)
    )


class TypeRegistry:
    """Classes stored data may name: registered ones and those this process serialized.

    Keyed by ``module.QualName``; lives on the converter (not in a global), so a
    fresh converter starts empty.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def add(self, cls: type) -> None:
        self._classes[class_path(cls)] = cls

    def get(self, path: str) -> type | None:
        return self._classes.get(path)

    def __contains__(self, cls: type) -> bool:
        return self._classes.get(class_path(cls)) is cls


@attrs.frozen
class Allowance:
    """Classes a load in progress may resolve beyond the registry."""

    classes: Mapping[str, type] = attrs.field(factory=dict)
    modules: frozenset[str] = frozenset()


_ALLOWANCE: ContextVar[Allowance | None] = ContextVar("flujo_trio_allowance", default=None)
#: ``"typed"`` (default), ``"plain"`` (tags decode to plain JSON: inspecting stored runs
#: without their code) or ``"input"`` (Any accepts plain JSON only: human answers).
_MODE: ContextVar[str] = ContextVar("flujo_trio_decode_mode", default="typed")


@contextmanager
def allowing(classes: Iterable[type] = (), modules: Iterable[str] = ()) -> Iterator[None]:
    """Let loads inside this block resolve ``classes`` and the top-level classes of
    ``modules`` (only modules already imported; nothing is imported here)."""
    current = _ALLOWANCE.get()
    merged = dict(current.classes) if current is not None else {}
    for cls in classes:
        if isinstance(cls, type):
            merged[class_path(cls)] = cls
    names = frozenset(modules) | (current.modules if current is not None else frozenset())
    token = _ALLOWANCE.set(Allowance(merged, names))
    try:
        yield
    finally:
        _ALLOWANCE.reset(token)


@attrs.define
class PlainContext(PipelineContext):
    """A context of another class, as :func:`plain_values` loads it: the base fields,
    the stored class name (text, never resolved) and the class's own fields as plain
    JSON, so a stored run can be shown whole without importing its code."""

    class_name: str = ""
    other_fields: dict[str, Any] = attrs.field(factory=dict)


@contextmanager
def plain_values() -> Iterator[None]:
    """Loads inside this block turn tagged values into plain JSON (classes are never
    resolved), and contexts of other classes into a :class:`PlainContext`."""
    token = _MODE.set("plain")
    try:
        yield
    finally:
        _MODE.reset(token)


def _from_allowed_module(path: str, allowance: Allowance) -> type | None:
    module_name, _, qualname = path.rpartition(".")
    while module_name:
        if module_name in allowance.modules:
            target: Any = sys.modules.get(module_name)
            try:
                for part in qualname.split("."):
                    target = getattr(target, part)
            except AttributeError:
                return None
            if _is_value_class(target) and class_path(target) == path:
                return target  # type: ignore[no-any-return]
            return None
        module_name, _, head = module_name.rpartition(".")
        qualname = f"{head}.{qualname}"
    return None


def _resolve(registry: TypeRegistry, path: Any) -> type:
    if not isinstance(path, str):
        raise SerializationError(f"a stored class name must be text, got {path!r}")
    cls = registry.get(path)
    allowance = _ALLOWANCE.get()
    if cls is None and allowance is not None:
        cls = allowance.classes.get(path) or _from_allowed_module(path, allowance)
    if cls is None:
        short = path.rpartition(".")[2] or path
        raise SerializationError(
            f"stored data names class {path!r}, which this process does not allow: "
            f"call flujo_trio.serialization.register({short}) (or decorate the class with "
            "@register) before loading, or declare it as a type of the pipeline"
        )
    return cls


# -- strict primitives ---------------------------------------------------------------


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        if isinstance(value, bool) and not any(m.value is value for m in cls):
            raise ValueError(value)  # True == 1: a bool would pick the member valued 1
        return cls(value)
    except ValueError:
        members = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"{value!r} is not a {cls.__qualname__} (one of {members})") from None


def _strict(kind: type, accept: tuple[type, ...], reject: tuple[type, ...] = ()) -> Any:
    def structure(value: Any, cls: Any) -> Any:
        if isinstance(cls, type) and issubclass(cls, enum.Enum):
            # StrEnum / IntEnum reach the str / int hook through their MRO.
            return _structure_enum(value, cls)
        if isinstance(value, reject) or not isinstance(value, accept):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return kind(value)

    return structure


def _unstructure_float(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not storable: only finite numbers are")
    return value


def _unstructure_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"Decimal({str(value)!r}) is not storable: only finite numbers are")
    return str(value)


def _parse_decimal(value: Any) -> Decimal:
    try:
        parsed = Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"not a decimal: {value!r}") from error
    if not parsed.is_finite():
        raise ValueError(f"expected a finite number, got Decimal({str(value)!r})")
    return parsed


def _structure_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a decimal string, got {value!r}")
    return _parse_decimal(value)


def _key_in(key_type: Any, key: Any) -> Any:
    """JSON object keys are text: int and int-valued enum keys come back from it."""
    wants_int = key_type is int or (
        isinstance(key_type, type)
        and issubclass(key_type, enum.Enum)
        and any(isinstance(member.value, int) for member in key_type)
    )
    if wants_int and isinstance(key, str):
        text = key[1:] if key.startswith("-") else key
        if text.isdigit() and text.isascii():
            return int(key)
    return key


def _key_out(key: Any) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TypeError(f"dict keys must be text, ints or enums to be stored, got {key!r}")
    return str(key)


def _is_dict_type(tp: Any) -> bool:
    return get_origin(tp) in (dict, Mapping) or tp in (dict, Mapping)


def _is_collection_type(tp: Any) -> bool:
    return tp in (list, tuple, set, frozenset) or get_origin(tp) in (
        list,
        tuple,
        set,
        frozenset,
        Sequence,
        MutableSequence,
        AbstractSet,
        MutableSet,
    )


def _collection_hooks(converter: JsonConverter) -> None:
    """A list, tuple or set field takes a JSON array only: cattrs iterates whatever it
    is given, so the text ``"ab"`` became ``['a', 'b']`` and ``{}`` an empty list."""
    building: set[Any] = set()

    def is_collection(tp: Any) -> bool:
        return tp not in building and _is_collection_type(tp)

    def factory(tp: Any) -> Callable[[Any, Any], Any]:
        building.add(tp)
        try:
            inner = converter.get_structure_hook(tp, cache_result=False)
        finally:
            building.discard(tp)

        def structure(data: Any, _: Any) -> Any:
            if not isinstance(data, list | tuple | set | frozenset):
                raise TypeError(f"expected a list, got {type(data).__name__} {data!r}")
            return inner(data, tp)

        return structure

    converter.register_structure_hook_factory(is_collection, factory)


def _pydantic_hooks(converter: JsonConverter) -> None:
    """Pydantic models as typed fields and human ``input_type``: their JSON fields, and
    back strictly (JSON-mode strict: no ``"1"`` for an int) without unknown keys."""

    def is_model(tp: Any) -> bool:
        return isinstance(tp, type) and _is_pydantic(tp)

    def unstructure(value: Any) -> Any:
        return value.model_dump(mode="json")

    def structure(data: Any, cls: Any) -> Any:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a mapping for {cls.__qualname__}, got {data!r}")
        if cls.model_config.get("extra") != "allow":
            known = set()
            for name, info in cls.model_fields.items():
                known.add(name)
                if isinstance(info.alias, str):
                    known.add(info.alias)
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                raise ValueError(f"unknown keys {unknown} for {cls.__qualname__}")
        return cls.model_validate_json(json.dumps(dict(data), allow_nan=False), strict=True)

    converter.register_unstructure_hook_func(is_model, unstructure)
    converter.register_structure_hook_func(is_model, structure)


def _dict_hooks(converter: JsonConverter) -> None:
    def unstructure_factory(tp: Any) -> Callable[[Any], dict[str, Any]]:
        args = get_args(tp)
        value_type = args[1] if len(args) == 2 else Any

        def unstructure(value: Mapping[Any, Any]) -> dict[str, Any]:
            return {
                _key_out(k): converter.unstructure(v, unstructure_as=value_type)
                for k, v in value.items()
            }

        return unstructure

    def structure_factory(tp: Any) -> Callable[[Any, Any], dict[Any, Any]]:
        args = get_args(tp)
        key_type, value_type = args if len(args) == 2 else (Any, Any)

        def structure(data: Any, _: Any) -> dict[Any, Any]:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a mapping, got {type(data).__name__} {data!r}")
            return {
                converter.structure(_key_in(key_type, k), key_type): converter.structure(
                    v, value_type
                )
                for k, v in data.items()
            }

        return structure

    converter.register_unstructure_hook_factory(_is_dict_type, unstructure_factory)
    converter.register_structure_hook_factory(_is_dict_type, structure_factory)


# -- Any-typed values ------------------------------------------------------------------


def _tagged(kind: str, **fields: Any) -> dict[str, Any]:
    return {VALUE_TAG: kind, **fields}


def _encode_any(converter: FlujoConverter, value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):  # before int: StrEnum and IntEnum are both
        converter.registry.add(type(value))
        return _tagged(
            "enum", **{"class": class_path(type(value))}, value=_encode_any(converter, value.value)
        )
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _unstructure_float(float(value))
    if isinstance(value, list):
        return [_encode_any(converter, item) for item in value]
    if isinstance(value, dict):
        if all(type(key) is str for key in value) and VALUE_TAG not in value:
            return {key: _encode_any(converter, item) for key, item in value.items()}
        pairs = [[_encode_any(converter, k), _encode_any(converter, v)] for k, v in value.items()]
        return _tagged("dict", items=pairs)
    if isinstance(value, tuple):
        return _tagged("tuple", items=[_encode_any(converter, v) for v in value])
    if isinstance(value, set | frozenset):
        kind = "frozenset" if isinstance(value, frozenset) else "set"
        return _tagged(kind, items=[_encode_any(converter, v) for v in value])
    if isinstance(value, dt.datetime):
        return _tagged("datetime", value=value.isoformat())
    if isinstance(value, dt.date):
        return _tagged("date", value=value.isoformat())
    if isinstance(value, Decimal):
        return _tagged("decimal", value=_unstructure_decimal(value))
    if isinstance(value, bytes):
        return _tagged("bytes", value=base64.b64encode(value).decode("ascii"))
    if isinstance(value, uuid.UUID):
        return _tagged("uuid", value=str(value))
    cls = type(value)
    if isinstance(value, PipelineContext):
        converter.registry.add(cls)
        return _tagged(
            "context", value=converter.unstructure(value, unstructure_as=PipelineContext)
        )
    if attrs.has(cls) or dataclasses.is_dataclass(value):
        converter.registry.add(cls)
        kind = "attrs" if attrs.has(cls) else "dataclass"
        data = converter.unstructure(value, unstructure_as=cls)
        return _tagged(kind, **{"class": class_path(cls)}, value=data)
    if _is_pydantic(cls):
        converter.registry.add(cls)
        data = _encode_any(converter, value.model_dump(mode="json"))
        return _tagged("pydantic", **{"class": class_path(cls)}, value=data)
    raise SerializationError(
        f"Cannot serialize a {cls.__qualname__}: use JSON values, attrs classes, "
        "dataclasses, pydantic models, enums, datetimes, decimals, bytes, tuples or sets"
    )


def _decode_any(converter: FlujoConverter, data: Any) -> Any:
    mode = _MODE.get()
    if mode == "input":
        return data  # already checked to be plain JSON: tags are just data here
    if isinstance(data, list):
        return [_decode_any(converter, item) for item in data]
    if isinstance(data, float) and not math.isfinite(data):
        raise ValueError(f"{data!r} is not a stored value: only finite numbers are")
    if not isinstance(data, dict):
        return data
    kind = data.get(VALUE_TAG)
    if kind is None:
        return {key: _decode_any(converter, item) for key, item in data.items()}
    plain = mode == "plain"
    if kind == "dict":
        pairs = [(_decode_any(converter, k), _decode_any(converter, v)) for k, v in data["items"]]
        if plain:
            return {k if isinstance(k, str) else json.dumps(k): v for k, v in pairs}
        return dict(pairs)
    if kind in ("tuple", "set", "frozenset"):
        items = [_decode_any(converter, v) for v in data["items"]]
        if plain:
            return items
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind in ("datetime", "date", "decimal", "bytes", "uuid"):
        value = data["value"]
        if plain:
            return value
        parsers: dict[str, Callable[[Any], Any]] = {
            "datetime": dt.datetime.fromisoformat,
            "date": dt.date.fromisoformat,
            "decimal": _parse_decimal,
            "bytes": lambda text: base64.b64decode(text, validate=True),
            "uuid": uuid.UUID,
        }
        return parsers[kind](value)
    if kind == "context":
        return converter.structure(data["value"], PipelineContext)
    if kind in ("enum", "attrs", "dataclass", "pydantic"):
        if plain:
            return _decode_any(converter, data["value"])
        cls = _resolve(converter.registry, data.get("class"))
        if kind == "enum" and issubclass(cls, enum.Enum):
            return cls(_decode_any(converter, data["value"]))
        if kind == "pydantic" and _is_pydantic(cls):
            return cls.model_validate(_decode_any(converter, data["value"]))  # type: ignore[attr-defined]
        if kind in ("attrs", "dataclass") and (attrs.has(cls) or dataclasses.is_dataclass(cls)):
            return converter.structure(data["value"], cls)
        raise SerializationError(f"stored class {class_path(cls)} is not a {kind} class")
    raise SerializationError(f"unknown {VALUE_TAG} {kind!r} in stored data")


# -- PipelineContext and its subclasses ------------------------------------------------------


def _is_context_type(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, PipelineContext)


def _context_hooks(converter: FlujoConverter) -> None:
    """Tagged by class so a subclass survives a round trip through its base type.

    Hooks are generated per concrete class on first use (not when the converter is
    made), so subclasses defined later work too; the cache lives on this converter.
    """
    unstructure_fns: dict[type, Callable[[Any], dict[str, Any]]] = {}
    structure_fns: dict[type, Callable[[Mapping[str, Any], Any], Any]] = {}

    def unstructure_factory(_: type) -> Callable[[Any], dict[str, Any]]:
        def unstructure(context: PipelineContext) -> dict[str, Any]:
            cls = type(context)
            fn = unstructure_fns.get(cls)
            if fn is None:
                fn = unstructure_fns[cls] = cattrs.gen.make_dict_unstructure_fn(cls, converter)
                converter.registry.add(cls)
            return {CONTEXT_TAG: class_path(cls), **fn(context)}

        return unstructure

    def structure_factory(target: type) -> Callable[[Any, Any], Any]:
        def structure(data: Any, _: Any) -> Any:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a mapping for {target.__name__}, got {data!r}")
            path = data.get(CONTEXT_TAG, class_path(target))
            fields = {k: v for k, v in data.items() if k != CONTEXT_TAG}
            if _MODE.get() == "plain" and path != class_path(PipelineContext):
                known = {f.name for f in attrs.fields(PipelineContext)}
                base = structure_with(
                    PipelineContext, {k: fields[k] for k in known & fields.keys()}
                )
                others = {k: _decode_any(converter, v) for k, v in fields.items() if k not in known}
                values = {f.name: getattr(base, f.name) for f in attrs.fields(PipelineContext)}
                return PlainContext(**values, class_name=str(path), other_fields=others)
            cls = target if path == class_path(target) else _resolve(converter.registry, path)
            if not issubclass(cls, target):
                raise TypeError(f"stored context {path} is not a {target.__qualname__}")
            return structure_with(cls, fields)

        return structure

    def structure_with(cls: type, fields: Mapping[str, Any]) -> Any:
        fn = structure_fns.get(cls)
        if fn is None:
            fn = structure_fns[cls] = cattrs.gen.make_dict_structure_fn(cls, converter)
        return fn(fields, cls)

    converter.register_unstructure_hook_factory(_is_context_type, unstructure_factory)
    converter.register_structure_hook_factory(_is_context_type, structure_factory)


class FlujoConverter(JsonConverter):
    """The JSON converter plus the registry of classes stored data may name."""

    def __init__(self) -> None:
        super().__init__(
            forbid_extra_keys=True,
            unstruct_collection_overrides={AbstractSet: list, Counter: dict},
        )
        self.registry = TypeRegistry()


def make_flujo_converter() -> FlujoConverter:
    """A fresh converter configured the flujo-trio way (``converter`` is the shared one)."""
    converter = FlujoConverter()
    configure_converter(converter)
    converter.register_structure_hook(bool, _strict(bool, (bool,)))
    converter.register_structure_hook(int, _strict(int, (int,), (bool,)))
    converter.register_structure_hook(float, _strict(float, (int, float), (bool,)))
    converter.register_structure_hook(str, _strict(str, (str,)))
    converter.register_unstructure_hook(float, _unstructure_float)
    converter.register_unstructure_hook(Decimal, _unstructure_decimal)
    _dict_hooks(converter)
    _collection_hooks(converter)
    _pydantic_hooks(converter)

    # Journal addresses: step names and loop iteration numbers.
    def is_segment(cls: Any) -> bool:
        return set(get_args(cls)) == {str, int} and get_origin(cls) in (Union, types.UnionType)

    def structure_segment(value: Any, _: Any) -> str | int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError(f"expected a step name or an iteration number, got {value!r}")
        return value

    converter.register_structure_hook_func(is_segment, structure_segment)

    # Enums are stored by value (StrEnum and IntEnum too), readable in the sqlite shell.
    def is_enum(cls: Any) -> bool:
        return isinstance(cls, type) and issubclass(cls, enum.Enum)

    converter.register_unstructure_hook_func(is_enum, lambda v: v.value)
    # StrEnum and IntEnum would reach the str / int pass-through through their MRO.
    for mixed in (enum.StrEnum, enum.IntEnum, enum.IntFlag):
        converter.register_unstructure_hook(mixed, lambda v: v.value)
    converter.register_structure_hook_func(is_enum, _structure_enum)
    converter.register_structure_hook(Decimal, _structure_decimal)

    def is_any(cls: Any) -> bool:
        return cls is Any or cls is object

    converter.register_unstructure_hook_func(is_any, lambda v: _encode_any(converter, v))
    converter.register_structure_hook_func(is_any, lambda v, _: _decode_any(converter, v))
    _context_hooks(converter)
    for own in (PipelineContext, HumanInteraction, RunStatus, Usage, UsageLimits):
        converter.registry.add(own)
    return converter


#: The converter every store, the runner and the human-input check use.
converter = make_flujo_converter()


def register(cls: type[T]) -> type[T]:
    """Allow stored data to name ``cls`` (an attrs class, dataclass, pydantic model,
    enum or context class); returns it, so it works as a class decorator.

    Register the classes your steps return (and their nested types) in the module
    that defines them, and a run stored by one process loads in any other.

    .. versionadded:: 0.2
    """
    if not _is_value_class(cls) and not _is_context_type(cls):
        raise SerializationError(
            f"register() takes an attrs class, dataclass, pydantic model, enum or "
            f"PipelineContext subclass, got {cls!r}"
        )
    converter.registry.add(cls)
    return cls


# -- errors with paths -----------------------------------------------------------------------


def _walk(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, Any]]:
    yield path, value
    if depth > 500:
        return
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from _walk(getattr(value, field.name), f"{path}.{field.name}", depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for dc_field in dataclasses.fields(value):
            yield from _walk(getattr(value, dc_field.name), f"{path}.{dc_field.name}", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}[{key!r}]", depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth + 1)


def _storable_leaf(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    plain = (type(None), bool, int, str, list, tuple, set, frozenset, dict, bytes, uuid.UUID)
    special = (enum.Enum, dt.date, Decimal)
    cls = type(value)
    return (
        isinstance(value, plain + special)
        or attrs.has(cls)
        or dataclasses.is_dataclass(value)
        or _is_pydantic(cls)
    )


def path_of_unstorable(value: Any, root: str = "$") -> str | None:
    """Where in ``value`` the first thing that cannot be stored sits."""
    for path, item in _walk(value, root):
        if not _storable_leaf(item):
            shown = repr(item) if isinstance(item, float | Decimal) else type(item).__qualname__
            return f"{path} ({shown})"
    return None


def unstructure(value: Any, as_type: Any, *, what: str) -> Any:
    """Unstructure for storage; a failure names the field path inside ``what``."""
    try:
        return converter.unstructure(value, unstructure_as=as_type)
    except RecursionError as error:
        raise SerializationError(f"Cannot serialize {what}: it is nested too deeply") from error
    except Exception as error:
        where = path_of_unstorable(value) or "an unknown field"
        raise SerializationError(
            f"Cannot serialize {what}: the value at {where} is not storable ({error})"
        ) from error


def _describe(error: BaseException, expected: Any) -> str:
    """cattrs' wording, plus our own message when it explains more (enum members)."""
    if isinstance(error, SerializationError):
        return str(error)
    described = format_exception(error, expected)
    if isinstance(error, ValueError | TypeError | KeyError) and str(error):
        return f"{described} ({error})"
    return described


def structure(data: Any, as_type: type[T] | Any, *, what: str) -> T:
    """Structure stored data; a mismatch names every failing path inside ``what``."""
    try:
        return converter.structure(data, as_type)  # type: ignore[no-any-return]
    except SerializationError as error:
        raise SerializationError(f"Cannot load {what}: {error}") from error
    except RecursionError as error:
        raise SerializationError(f"Cannot load {what}: it is nested too deeply") from error
    except Exception as error:
        details = (
            "; ".join(cattrs.transform_error(error, format_exception=_describe))
            if isinstance(error, cattrs.BaseValidationError)
            else f"{type(error).__name__}: {error}"
        )
        raise SerializationError(f"Cannot load {what}: {details}") from error


# -- JSON text ---------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a stored value: only finite numbers are")


def dumps(data: Any, *, what: str) -> str:
    """JSON text of unstructured data (no NaN/Infinity literals, compact)."""
    try:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise SerializationError(f"Cannot serialize {what}: {error}") from error
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        where = _bad_text_path(data, "$") or "a text value"
        raise SerializationError(
            f"Cannot serialize {what}: {where} is not valid Unicode (a lone surrogate, e.g. "
            "from decoding bytes with 'surrogateescape'): store it as bytes or clean the text"
        ) from None
    return text


def _bad_text_path(data: Any, path: str) -> str | None:
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(data, list):
        for index, item in enumerate(data):
            found = _bad_text_path(item, f"{path}[{index}]")
            if found:
                return found
    elif isinstance(data, dict):
        for key, item in data.items():
            found = _bad_text_path(key, f"{path} (a key)") or _bad_text_path(
                item, f"{path}[{key!r}]"
            )
            if found:
                return found
    return None


def loads(text: str | bytes, *, what: str) -> Any:
    """Parse stored JSON text; NaN and Infinity literals are refused."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise SerializationError(
            f"Cannot load {what}: its stored JSON is invalid ({error})"
        ) from error


# -- human answers ------------------------------------------------------------------------


def _plain_path_error(value: Any, path: str, depth: int = 0) -> str | None:
    if depth > 200:
        return f"{path} is nested too deeply"
    if value is None or isinstance(value, bool | str):
        return None
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r} (not a finite number)"
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _plain_path_error(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a non-text key {key!r}"
            found = _plain_path_error(item, f"{path}[{key!r}]", depth + 1)
            if found:
                return found
        return None
    return f"{path} is a {type(value).__qualname__} (answers are JSON values)"


def structure_answer(value: Any, input_type: Any, *, step: str) -> Any:
    """A person's answer, structured strictly against ``input_type``.

    The answer must be plain JSON (an instance of ``input_type`` itself is checked
    the same way, through its fields): no tags are decoded, bools are not ints,
    non-finite floats, bytes and other objects are refused. Raises
    :class:`HumanInputError` naming what was wrong.
    """
    what = f"human input for {step!r}"
    if input_type is not None and _is_value_class(input_type) and isinstance(value, input_type):
        try:
            value = converter.unstructure(value, unstructure_as=input_type)
        except Exception as error:
            raise HumanInputError(f"Cannot use {what}: {error}") from error
        if isinstance(value, enum.Enum):
            value = value.value
    problem = _plain_path_error(value, "$")
    if problem is not None:
        raise HumanInputError(f"Cannot use {what}: {problem}")
    if input_type is None or input_type is Any:
        return value
    wants_fields = attrs.has(input_type) or dataclasses.is_dataclass(input_type)
    if wants_fields and not isinstance(value, dict):
        names = ", ".join(
            f.name
            for f in (
                attrs.fields(input_type)
                if attrs.has(input_type)
                else dataclasses.fields(input_type)
            )
        )
        raise HumanInputError(
            f"Cannot use {what}: expected a JSON object with the fields of "
            f"{input_type.__qualname__} ({names}), got {type(value).__name__} {value!r}"
        )
    token = _MODE.set("input")
    try:
        return structure(value, input_type, what=what)
    except SerializationError as error:
        raise HumanInputError(str(error)) from error
    finally:
        _MODE.reset(token)
