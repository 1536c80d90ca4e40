"""Calling user code the same way everywhere: sync or async, with only the kwargs it takes."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import attrs

#: Keyword arguments the runtime may offer an agent.
AGENT_KWARGS = frozenset({"context", "feedback", "resources", "emit", "meter"})


async def call_maybe_async(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; await the result when it is awaitable (async def or a returned coroutine)."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def accepted_kwargs(fn: Callable[..., Any], offered: frozenset[str]) -> frozenset[str]:
    """The names in ``offered`` that ``fn``'s signature takes (all of them with ``**kwargs``)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return frozenset()
    names: set[str] = set()
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return offered
        if param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(param.name)
    return offered & names


@attrs.frozen
class AgentCall:
    """How to call one agent: its entry point and the keyword arguments it accepts.

    Worked out once when the step is declared, so no call pays for ``inspect``.
    """

    fn: Callable[..., Any]
    accepts: frozenset[str]
    is_coroutine: bool = False
    """``fn`` is an ``async def``: calling it always returns a coroutine to await."""

    @classmethod
    def of(cls, agent: Any) -> AgentCall | None:
        run = getattr(agent, "run", None)
        fn = run if callable(run) else agent if callable(agent) else None
        if fn is None:
            return None
        return cls(fn, accepted_kwargs(fn, AGENT_KWARGS), inspect.iscoroutinefunction(fn))

    async def __call__(self, data: Any, offered: Mapping[str, Any]) -> Any:
        kwargs = {name: value for name, value in offered.items() if name in self.accepts}
        return await call_maybe_async(self.fn, data, **kwargs)
