"""Plain Python functions as tools a chat model may call.

A tool's schema comes from its signature (pydantic writes the JSON Schema of each
annotation) and its docstring (the summary describes the tool; a Google-style
``Args:`` section or Sphinx ``:param x:`` lines describe the parameters). The model
names tools and writes their arguments; it never chooses code: only the functions
given to the agent can be called, with arguments validated against their types.

The calls of one model reply run concurrently, each as a named Trio task inside the
agent call (so cancelling the step cancels them). An async tool runs on Trio; a
sync tool runs in a worker thread so that it cannot stall the run: a cancel (the
step's timeout, the caller's) does not wait for it, the thread is abandoned and its
result dropped. A tool that
raises does not fail the step: its error goes back to the model as the tool's
result, which usually lets the model correct its arguments.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import attrs
import trio

from ..agent_api import Emitter
from ..errors import ConfigurationError, FlujoTrioError
from .completions import ToolCall

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?):\s*$")


@attrs.frozen
class Tool:
    """One callable tool: its name, what the model is told, and how to call it."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] = attrs.field(repr=False)
    _arguments: Any = attrs.field(repr=False)  # pydantic TypeAdapter of the arguments

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> Tool:
        if isinstance(fn, Tool):
            return fn
        if not callable(fn):
            raise ConfigurationError(f"a tool must be a function, got {fn!r}")
        name = getattr(fn, "__name__", "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise ConfigurationError(
                f"tool {fn!r}: the name {name!r} is not a valid tool name "
                "(letters, digits, _ and -, at most 64): wrap it in a named function"
            )
        summary, described = _docstring(fn)
        adapter = _arguments_adapter(fn, name, described)
        schema = adapter.json_schema()
        schema.pop("title", None)
        return cls(name, summary, schema, fn, adapter)

    def definition(self) -> dict[str, Any]:
        """The tool as the chat-completions API takes it."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    async def call(self, arguments: str) -> Any:
        """Validate ``arguments`` (JSON text from the model) and call the function."""
        import pydantic

        try:
            kwargs = self._arguments.validate_json(arguments or "{}")
        except pydantic.ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in error.errors(include_url=False)
            )
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {problems}") from None
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        # Abandoned on cancel: a sync tool blocked in I/O must not hold the step past its
        # timeout or its caller's cancel (the thread runs on; its result is dropped).
        result = await trio.to_thread.run_sync(
            functools.partial(self.fn, **kwargs), abandon_on_cancel=True
        )
        if inspect.isawaitable(result):  # a sync callable that returned a coroutine
            result = await result
        return result


class ToolArgumentsError(FlujoTrioError):
    """The model's arguments do not fit the tool (sent back to the model, never raised)."""


def tools_of(tools: Sequence[Callable[..., Any]]) -> dict[str, Tool]:
    found: dict[str, Tool] = {}
    for fn in tools:
        tool = Tool.of(fn)
        if tool.name in found:
            raise ConfigurationError(f"two tools are named {tool.name!r}: give them distinct names")
        found[tool.name] = tool
    return found


async def run_tool_calls(
    tools: dict[str, Tool], calls: Sequence[ToolCall], emit: Emitter | None
) -> list[dict[str, Any]]:
    """Run one reply's tool calls concurrently; their tool messages, in the calls' order."""
    results: list[dict[str, Any]] = [{} for _ in calls]

    async def one(index: int, call: ToolCall) -> None:
        if emit is not None:
            await emit.tool_called(call.name, _loads(call.arguments), call_id=call.id)
        result: Any = None
        error: str | None = None
        tool = tools.get(call.name)
        if tool is None:
            error = f"there is no tool named {call.name!r}; the tools are: {', '.join(tools)}"
        else:
            try:
                result = await tool.call(call.arguments)
            except ToolArgumentsError as problem:
                error = str(problem)
            except Exception as problem:  # the tool's failure is news for the model
                error = f"{call.name} raised {type(problem).__name__}: {problem}"
        content = f"Error: {error}" if error is not None else _text(result)
        results[index] = {"role": "tool", "tool_call_id": call.id, "content": content}
        if emit is not None:
            await emit.tool_returned(call.name, result=result, error=error, call_id=call.id)

    async with trio.open_nursery() as nursery:
        for index, call in enumerate(calls):
            nursery.start_soon(one, index, call, name=f"tool {call.name} ({call.id})")
    return results


def _loads(arguments: str) -> Any:
    import json

    try:
        return json.loads(arguments)
    except ValueError:
        return arguments  # as the model sent it: the event shows what was wrong


def _text(result: Any) -> str:
    if isinstance(result, str):
        return result
    import pydantic_core

    def fallback(value: Any) -> Any:
        if attrs.has(type(value)):
            return attrs.asdict(value)
        return str(value)

    return pydantic_core.to_json(result, fallback=fallback).decode()


def _arguments_adapter(fn: Callable[..., Any], name: str, described: dict[str, str]) -> Any:
    """A pydantic TypeAdapter for ``fn``'s keyword arguments, as a TypedDict.

    Parameters with defaults are optional keys: when the model leaves one out, the
    function's own default applies.
    """
    from typing import NotRequired

    import pydantic
    from typing_extensions import TypedDict

    try:
        signature = inspect.signature(fn)
        hints = _hints(fn)
    except (TypeError, ValueError, NameError) as error:
        raise ConfigurationError(f"tool {name}: cannot read its signature ({error})") from error
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigurationError(
                f"tool {name}: parameter {param.name!r} cannot be passed by keyword; "
                "a tool takes named parameters only"
            )
        annotation = hints.get(param.name, Any)
        if param.name in described:
            annotation = Annotated[annotation, pydantic.Field(description=described[param.name])]
        if param.default is not param.empty:
            annotation = NotRequired[annotation]
        fields[param.name] = annotation
    arguments = TypedDict(f"{name}_arguments", fields)  # type: ignore[misc]
    try:
        return pydantic.TypeAdapter(arguments)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as error:
        raise ConfigurationError(
            f"tool {name}: no JSON schema for its parameters: {error}"
        ) from error


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else type(fn).__call__
    return typing.get_type_hints(target, include_extras=True)


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary (text before the first section) and each documented parameter."""
    doc = inspect.getdoc(fn) or ""
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        header = _SECTION.match(line)
        sphinx = re.match(r"^\s*:param\s+(?:[^:]+\s+)?(\w+):\s*(.*)$", line)
        if header:
            section, current = header.group(1), None
        elif sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
        elif section in ("Args", "Arguments", "Parameters"):
            entry = re.match(r"^\s{0,8}(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", line)
            if entry:
                current = entry.group(1)
                params[current] = entry.group(2).strip()
            elif current and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
        elif section is None and not line.lstrip().startswith(":"):
            summary.append(line)
    return " ".join(" ".join(summary).split()), params
