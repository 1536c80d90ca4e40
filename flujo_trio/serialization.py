"""The one cattrs converter for everything flujo-trio stores.

- Typed fields follow their types: enums are stored by value and come back as
  members, ``datetime`` as ISO text, ``Decimal`` as text, sets as lists.
- A :class:`PipelineContext` (or any subclass, even one defined after this module
  was imported, or inside a function) is stored with a ``__type__`` tag naming its
  class, and comes back as that class with all its fields.
- Values typed ``Any`` (step outputs, metadata, human input) keep their own type
  through a ``__flujo_type__`` tag when JSON alone would lose it (tuples, sets,
  enums, datetimes, decimals, attrs instances). Anything else that is not JSON fails
  with a :class:`SerializationError` naming the field path.
- Structuring is strict: missing fields, unknown keys, unknown enum members and
  values of the wrong type (a string for a bool) are errors that name the path.
"""

from __future__ import annotations

import datetime as dt
import enum
import importlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import JsonConverter, make_converter
from cattrs.v import format_exception

from .context import PipelineContext
from .errors import SerializationError
from .runtime.record import StepRecord

T = TypeVar("T")

CONTEXT_TAG = "__type__"
#: StepRecord's replay bookkeeping: rebuilt on load, never stored.
_REPLAY_FIELDS = ("started_at", "prior", "_pending", "_call_taken")
VALUE_TAG = "__flujo_type__"


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _resolve_class(path: str, base: type | None = None) -> type:
    """The class named ``module.QualName``: importable, or a live subclass of ``base``."""
    if base is not None:
        # ``attrs.define`` replaces a class by a slotted copy; the original lingers in
        # ``__subclasses__()`` until collected, without fields of its own. Take the
        # newest class that attrs itself built.
        matches = [
            candidate
            for candidate in (base, *_subclasses(base))
            if class_path(candidate) == path and "__attrs_attrs__" in vars(candidate)
        ]
        if matches:
            return matches[-1]
    module_name, _, qualname = path.rpartition(".")
    while module_name:
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            qualname = f"{head}.{qualname}"
            continue
        try:
            for part in qualname.split("."):
                target = getattr(target, part)
        except AttributeError:
            break
        if isinstance(target, type):
            return target
        break
    raise SerializationError(
        f"Cannot find class {path!r}: define it at module level (importable) so stored "
        "runs can be loaded, or load them in a process where it exists"
    )


# -- strict primitives ---------------------------------------------------------------


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
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
        return kind(value)

    return structure


def _structure_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a decimal string, got {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"not a decimal: {value!r}") from error


# -- Any-typed values ------------------------------------------------------------------


def _encode_any(converter: JsonConverter, value: Any) -> Any:
    if isinstance(value, enum.Enum):  # before str/int: StrEnum and IntEnum are both
        return {
            VALUE_TAG: "enum",
            "class": class_path(type(value)),
            "value": _encode_any(converter, value.value),
        }
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_encode_any(converter, item) for item in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value) and VALUE_TAG not in value:
            return {key: _encode_any(converter, item) for key, item in value.items()}
        pairs = [[_encode_any(converter, k), _encode_any(converter, v)] for k, v in value.items()]
        return {VALUE_TAG: "dict", "items": pairs}
    if isinstance(value, tuple):
        return {VALUE_TAG: "tuple", "items": [_encode_any(converter, v) for v in value]}
    if isinstance(value, set | frozenset):
        kind = "frozenset" if isinstance(value, frozenset) else "set"
        return {VALUE_TAG: kind, "items": [_encode_any(converter, v) for v in value]}
    if isinstance(value, dt.datetime):
        return {VALUE_TAG: "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {VALUE_TAG: "date", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {VALUE_TAG: "decimal", "value": str(value)}
    if attrs.has(type(value)):
        data = converter.unstructure(value, unstructure_as=type(value))
        return {VALUE_TAG: "attrs", "class": class_path(type(value)), "value": data}
    raise SerializationError(
        f"Cannot serialize a {type(value).__qualname__}: use JSON values, attrs classes, "
        "enums, datetimes, decimals, tuples or sets"
    )


def _decode_any(converter: JsonConverter, data: Any) -> Any:
    if isinstance(data, list):
        return [_decode_any(converter, item) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(VALUE_TAG)
    if kind is None:
        return {key: _decode_any(converter, item) for key, item in data.items()}
    if kind == "dict":
        return {_decode_any(converter, k): _decode_any(converter, v) for k, v in data["items"]}
    if kind in ("tuple", "set", "frozenset"):
        items = [_decode_any(converter, v) for v in data["items"]]
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
    if kind == "enum":
        enum_cls = _resolve_class(data["class"])
        return enum_cls(_decode_any(converter, data["value"]))
    if kind == "datetime":
        return dt.datetime.fromisoformat(data["value"])
    if kind == "date":
        return dt.date.fromisoformat(data["value"])
    if kind == "decimal":
        return Decimal(data["value"])
    if kind == "attrs":
        cls = _resolve_class(data["class"], PipelineContext)
        return converter.structure(data["value"], cls)
    raise ValueError(f"unknown {VALUE_TAG} {kind!r}")


# -- PipelineContext and its subclasses ------------------------------------------------------


def _is_context_type(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, PipelineContext)


def _context_hooks(converter: JsonConverter) -> None:
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
                fn = unstructure_fns[cls] = make_dict_unstructure_fn(cls, converter)
            return {CONTEXT_TAG: class_path(cls), **fn(context)}

        return unstructure

    def structure_factory(target: type) -> Callable[[Any, Any], Any]:
        def structure(data: Any, _: Any) -> Any:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a mapping for {target.__name__}, got {data!r}")
            path = data.get(CONTEXT_TAG, class_path(target))
            cls = _resolve_class(path, PipelineContext)
            if not issubclass(cls, target):
                raise TypeError(f"stored context {path} is not a {target.__qualname__}")
            fn = structure_fns.get(cls)
            if fn is None:
                fn = structure_fns[cls] = make_dict_structure_fn(cls, converter)
            return fn({k: v for k, v in data.items() if k != CONTEXT_TAG}, cls)

        return structure

    converter.register_unstructure_hook_factory(_is_context_type, unstructure_factory)
    converter.register_structure_hook_factory(_is_context_type, structure_factory)


def make_flujo_converter() -> JsonConverter:
    """A fresh converter configured the flujo-trio way (``converter`` is the shared one)."""
    converter = make_converter(forbid_extra_keys=True)
    converter.register_structure_hook(bool, _strict(bool, (bool,)))
    converter.register_structure_hook(int, _strict(int, (int,), (bool,)))
    converter.register_structure_hook(float, _strict(float, (int, float), (bool,)))
    converter.register_structure_hook(str, _strict(str, (str,)))
    converter.register_unstructure_hook(Decimal, str)

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
    # Replay bookkeeping is rebuilt on load; the clock reading is per-process.
    omitted = {name: override(omit=True) for name in _REPLAY_FIELDS}
    converter.register_unstructure_hook(
        StepRecord,
        make_dict_unstructure_fn(StepRecord, converter, **omitted),  # type: ignore[arg-type]
    )
    converter.register_structure_hook(
        StepRecord,
        make_dict_structure_fn(StepRecord, converter, **omitted),  # type: ignore[arg-type]
    )
    return converter


#: The converter every store, the runner and the human-input check use.
converter = make_flujo_converter()


# -- errors with paths -----------------------------------------------------------------------


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if attrs.has(type(value)):
        skipped = _REPLAY_FIELDS if isinstance(value, StepRecord) else ()
        for field in attrs.fields(type(value)):
            if field.name not in skipped:
                yield from _walk(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _is_leaf_serializable(value: Any) -> bool:
    plain = (type(None), bool, int, float, str, list, tuple, set, frozenset, dict)
    special = (enum.Enum, dt.date, Decimal)
    return isinstance(value, plain + special) or attrs.has(type(value))


def dumps_path_error(value: Any, root: str = "$") -> str | None:
    """Where in ``value`` the first thing that cannot be serialized sits."""
    for path, item in _walk(value, root):
        if not _is_leaf_serializable(item):
            return f"{path} ({type(item).__qualname__})"
    return None


def unstructure(value: Any, as_type: Any, *, what: str) -> Any:
    """Unstructure for storage; a failure names the field path inside ``what``."""
    try:
        return converter.unstructure(value, unstructure_as=as_type)
    except Exception as error:
        where = dumps_path_error(value) or "an unknown field"
        raise SerializationError(
            f"Cannot serialize {what}: the value at {where} is not storable ({error})"
        ) from error


def _describe(error: BaseException, expected: Any) -> str:
    """cattrs' wording, plus our own message when it explains more (enum members)."""
    if isinstance(error, SerializationError):
        return str(error)
    described = format_exception(error, expected)
    if isinstance(error, ValueError | TypeError) and str(error):
        return f"{described} ({error})"
    return described


def structure(data: Any, as_type: type[T], *, what: str) -> T:
    """Structure stored data; a mismatch names every failing path inside ``what``."""
    try:
        return converter.structure(data, as_type)
    except SerializationError as error:
        raise SerializationError(f"Cannot load {what}: {error}") from error
    except Exception as error:
        details = (
            "; ".join(cattrs.transform_error(error, format_exception=_describe))
            if isinstance(error, cattrs.BaseValidationError)
            else f"{type(error).__name__}: {error}"
        )
        raise SerializationError(f"Cannot load {what}: {details}") from error
