"""The agent step: one agent call with retries, checks, plugins and a fallback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs

from ..backoff import Backoff
from ..cache import StepCache
from ..callables import AgentCall
from ..checks import Plugin, Processors, Validator
from ..errors import ConfigurationError
from ..usage import Usage, UsageLimits
from .base import check_callable, check_limits, check_name
from .outline import Block, Leaf
from .pipeline import StepBase

ValidationMode = Literal["fail", "drop", "warn"]
#: A reservation: a fixed upper bound, or ``fn(data) -> Usage`` computed per call.
Reserve = Usage | Callable[[Any], Usage]


def _as_processors(value: Processors | Sequence[Any]) -> Processors:
    if isinstance(value, Processors):
        return value
    return Processors(output=tuple(value))


def _check_retries(_: object, __: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"max_retries must be an int >= 0, got {value!r}")


def _check_timeout(_: object, __: object, value: float | None) -> None:
    # Numbers only: "5" > 0 would raise TypeError, not say what is wrong.
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
    ):
        raise ConfigurationError(f"timeout_s must be > 0 seconds or None, got {value!r}")


def _check_validation(_: object, __: object, value: str) -> None:
    if value not in ("fail", "drop", "warn"):
        raise ConfigurationError(f"validation must be 'fail', 'drop' or 'warn', got {value!r}")


def _check_reserve(_: object, __: object, value: Any) -> None:
    if value is not None and not isinstance(value, Usage) and not callable(value):
        raise ConfigurationError(
            f"reserve must be a Usage or a callable returning one, got {value!r}"
        )


def _check_cache(_: object, __: object, value: Any) -> None:
    if value is not None and not isinstance(value, StepCache):
        raise ConfigurationError(
            f"cache must be a MemoryCache, SqliteCache or another StepCache, got {value!r}"
        )


def _check_backoff(_: object, __: object, value: Any) -> None:
    if value is not None and not isinstance(value, Backoff):
        raise ConfigurationError(f"backoff must be a Backoff or None, got {value!r}")


def _touches_context(step: Step) -> bool:
    checks = step.validators or step.plugins or step.processors.input or step.processors.output
    fallback = step.fallback
    return (
        "context" in step.call.accepts
        or bool(checks)
        or (isinstance(fallback, Step) and fallback.touches_context)
    )


def _agent_call(step: Step) -> AgentCall:
    call = AgentCall.of(step.agent)
    if call is None:
        raise ConfigurationError(
            f"Step {step.name!r}: the agent must be an async callable or have an "
            f"async run(data, **kwargs) method, got {step.agent!r}"
        )
    return call


@attrs.frozen
class Step(StepBase):
    """Call an agent; retry only its own failures; then plugins, validators, fallback."""

    name: str
    agent: Any
    max_retries: int = attrs.field(default=1, kw_only=True, validator=_check_retries)
    timeout_s: float | None = attrs.field(default=None, kw_only=True, validator=_check_timeout)
    validators: tuple[Validator, ...] = attrs.field(default=(), kw_only=True, converter=tuple)
    plugins: tuple[Plugin, ...] = attrs.field(default=(), kw_only=True, converter=tuple)
    processors: Processors = attrs.field(factory=Processors, kw_only=True, converter=_as_processors)
    fallback: Step | None = attrs.field(default=None, kw_only=True)
    validation: ValidationMode = attrs.field(
        default="fail", kw_only=True, validator=_check_validation
    )
    reserve: Reserve | None = attrs.field(default=None, kw_only=True, validator=_check_reserve)
    cache: StepCache | None = attrs.field(default=None, kw_only=True, validator=_check_cache)
    limits: UsageLimits | None = attrs.field(default=None, kw_only=True, validator=check_limits)
    """A budget for this step's attempts (the fallback runs under its own ``limits``)."""
    backoff: Backoff | None = attrs.field(default=None, kw_only=True, validator=_check_backoff)
    """Waits between attempts; None: the agent's ``default_backoff`` (adapters have
    one), else no wait. ``Backoff.off()`` never waits."""
    call: AgentCall = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(_agent_call, takes_self=True),
    )
    has_checks: bool = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(
            lambda step: bool(step.validators or step.plugins or step.processors.output),
            takes_self=True,
        ),
    )
    """Whether anything runs after the agent call (output processors, plugins, validators)."""
    plain: bool = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(
            lambda step: (
                not (step.has_checks or step.processors.input or step.fallback or step.limits)
            ),
            takes_self=True,
        ),
    )
    """Nothing but the agent's attempts: the runtime takes its shortest path."""
    touches_context: bool = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(lambda step: _touches_context(step), takes_self=True),
    )
    """Whether anything this step runs receives the context (so its changes are recorded)."""

    def __attrs_post_init__(self) -> None:
        check_name("Step", self.name)
        for what, fns in (
            ("validators", self.validators),
            ("plugins", self.plugins),
            ("input processors", self.processors.input),
            ("output processors", self.processors.output),
        ):
            for fn in fns:
                check_callable(f"Step {self.name!r}", what, fn)
        self._check_fallback_chain()

    def _check_fallback_chain(self) -> None:
        seen_ids = {id(self)}
        seen_names = [self.name]
        current = self.fallback
        while current is not None:
            if not isinstance(current, Step):
                raise ConfigurationError(
                    f"Step {self.name!r}: fallback must be a Step, got {current!r}"
                )
            if id(current) in seen_ids or current.name in seen_names:
                chain = " -> ".join([*seen_names, current.name])
                raise ConfigurationError(
                    f"Step {self.name!r}: fallback chain loops back on itself ({chain}); "
                    "give each fallback its own step"
                )
            seen_ids.add(id(current))
            seen_names.append(current.name)
            current = current.fallback

    def outline(self) -> Block:
        chain: list[str] = []
        fallback = self.fallback
        while fallback is not None:
            chain.append(fallback.name)
            fallback = fallback.fallback
        return Leaf("agent", self.name, tuple(chain))

    @property
    def retry_backoff(self) -> Backoff | None:
        """The backoff that applies: the step's own, else the agent's default."""
        if self.backoff is not None:
            return self.backoff
        default = getattr(self.agent, "default_backoff", None)
        return default if isinstance(default, Backoff) else None

    def reservation_for(self, data: Any) -> Usage | None:
        """The usage to reserve before calling the agent with ``data``."""
        if self.reserve is None or isinstance(self.reserve, Usage):
            return self.reserve
        usage = self.reserve(data)
        if not isinstance(usage, Usage):
            raise ConfigurationError(
                f"Step {self.name!r}: reserve callable returned {usage!r}, expected a Usage"
            )
        return usage

    @classmethod
    def from_callable(cls, fn: Callable[..., Any], name: str | None = None, **options: Any) -> Step:
        """A step whose agent is ``fn`` (sync or async), named after it unless ``name``."""
        check_callable("Step.from_callable", "fn", fn)
        step_name = name if name is not None else getattr(fn, "__name__", None)
        if step_name is None or step_name == "<lambda>":
            raise ConfigurationError(
                "Step.from_callable: cannot name a lambda or unnamed callable; pass name=..."
            )
        return cls(step_name, fn, **options)
