"""What a model must reply for a given output type, and turning the reply into it.

pydantic's ``TypeAdapter`` gives the schema and the validation for pydantic models,
dataclasses, TypedDicts, enums, ``Literal``\\ s, tuples, unions and plain types;
attrs classes (anywhere in the type) go through cattrs instead. Providers'
structured-output modes want an object at the root, so any other type is asked for
as ``{"response": ...}`` and unwrapped.

Replies are data: validation only ever builds the declared type. In particular the
state converter is not used here, since it resolves classes named in the data it
reads (right for our own stored runs, never for a model's reply).
"""

from __future__ import annotations

import enum
import json
import re
from typing import Any

import attrs
import cattrs

from ..errors import ConfigurationError, FlujoTrioError
from .schema import attrs_schema, contains_attrs, is_object, strict_schema

#: The key a non-object output is wrapped in.
WRAPPER_KEY = "response"


class ReplyMismatch(FlujoTrioError):
    """The reply does not fit the output type; the message is feedback for the model."""


@attrs.frozen
class OutputSpec:
    """How to ask for, and read back, one output type."""

    output_type: Any
    name: str
    schema: dict[str, Any]
    """The JSON Schema sent to the provider (wrapped when the type is not an object)."""
    strict: bool
    """Whether the schema fits the provider's strict mode."""
    wrapped: bool
    _validate: Any = attrs.field(repr=False)

    @classmethod
    def of(cls, output_type: Any) -> OutputSpec:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", getattr(output_type, "__name__", "") or "")
        name = name[:64] or "output"
        if contains_attrs(output_type):
            schema, validate = attrs_schema(output_type), _cattrs_validator(output_type)
        else:
            schema, validate = _pydantic(output_type)
        wrapped = not is_object(schema)
        if wrapped:
            defs = schema.pop("$defs", None)
            schema = {
                "type": "object",
                "properties": {WRAPPER_KEY: schema},
                "required": [WRAPPER_KEY],
                "additionalProperties": False,
                **({"$defs": defs} if defs else {}),
            }
        schema, strict = strict_schema(schema)
        return cls(output_type, name, schema, strict, wrapped, validate)

    def response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": self.strict},
        }

    def parse(self, text: str) -> Any:
        """The reply as ``output_type``; :class:`ReplyMismatch` says why it is not one."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ReplyMismatch(f"the reply is not JSON: {error}") from error
        if self.wrapped:
            if not isinstance(data, dict) or WRAPPER_KEY not in data:
                raise ReplyMismatch(f'the reply must be an object with a "{WRAPPER_KEY}" key')
            data = data[WRAPPER_KEY]
        try:
            return self._validate(data)
        except _Problems as problems:
            raise ReplyMismatch(
                f"the reply does not fit {self.name}: {'; '.join(problems.lines)}"
            ) from problems


class _Problems(FlujoTrioError):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines)
        self.lines = lines


def _pydantic(output_type: Any) -> tuple[dict[str, Any], Any]:
    try:
        import pydantic
    except ImportError as error:
        raise ConfigurationError(
            f"output_type={output_type!r} needs pydantic (pip install 'flujo-trio[openai]'), "
            "or use attrs classes"
        ) from error
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(output_type)
        schema = adapter.json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as error:
        raise ConfigurationError(
            f"no JSON schema for output_type={output_type!r}: {error}"
        ) from error

    def validate(data: Any) -> Any:
        try:
            return adapter.validate_python(data)
        except pydantic.ValidationError as error:
            raise _Problems(
                [
                    _line(problem["loc"], problem["msg"])
                    for problem in error.errors(include_url=False)
                ]
            ) from error

    return schema, validate


def _line(location: tuple[Any, ...], message: str) -> str:
    path = ".".join(str(part) for part in location)
    return f"{path}: {message}" if path else message


def _cattrs_validator(output_type: Any) -> Any:
    converter = _reply_converter()

    def validate(data: Any) -> Any:
        try:
            return converter.structure(data, output_type)
        except Exception as error:
            raise _Problems(cattrs.transform_error(error, path="reply")) from error

    return validate


def _reply_converter() -> cattrs.Converter:
    """A cattrs converter that builds only declared types, strictly (no "3" for an int)."""
    converter = cattrs.Converter(forbid_extra_keys=True)

    def exact(kind: type, accept: tuple[type, ...]) -> Any:
        def structure(value: Any, _: Any) -> Any:
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accept):
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
            return kind(value)

        return structure

    converter.register_structure_hook(str, exact(str, (str,)))
    converter.register_structure_hook(int, exact(int, (int,)))
    converter.register_structure_hook(float, exact(float, (int, float)))
    converter.register_structure_hook(bool, exact(bool, (bool,)))
    converter.register_structure_hook_func(
        lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum),
        lambda value, tp: tp(value),
    )
    converter.register_structure_hook(Any, lambda value, _: value)
    return converter
