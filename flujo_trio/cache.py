"""Step-result caches: a hit skips the agent and reports zero new usage."""

from __future__ import annotations

import copy
import enum
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import attrs

from .errors import ConfigurationError
from .usage import Usage


@attrs.frozen
class CachedOutput:
    """What a cache keeps of a successful step: the output and what producing it cost."""

    output: Any
    usage: Usage


@runtime_checkable
class StepCache(Protocol):
    """What ``Step(cache=...)`` needs; keys are made by the cache so it owns their shape."""

    def make_key(self, step_name: str, data: Any) -> str | None:
        """The key for ``data`` at ``step_name``, or None when ``data`` cannot be keyed."""

    async def get(self, key: str) -> CachedOutput | None: ...

    async def put(self, key: str, value: CachedOutput) -> None: ...


def _canonical(value: Any) -> Any:
    """A JSON-able form that is equal for equal inputs across processes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    if isinstance(value, enum.Enum):
        return ["enum", f"{type(value).__qualname__}", _canonical(value.value)]
    if isinstance(value, bytes):
        return ["bytes", value.hex()]
    if isinstance(value, list | tuple):
        return [type(value).__name__, [_canonical(v) for v in value]]
    if isinstance(value, set | frozenset):
        items = sorted(json.dumps(_canonical(v), sort_keys=True) for v in value)
        return ["set", items]
    if isinstance(value, dict):
        pairs = sorted(
            (json.dumps(_canonical(k), sort_keys=True), _canonical(v)) for k, v in value.items()
        )
        return ["dict", pairs]
    if attrs.has(type(value)):
        fields = {a.name: _canonical(getattr(value, a.name)) for a in attrs.fields(type(value))}
        return ["attrs", f"{type(value).__module__}.{type(value).__qualname__}", fields]
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(data: Any) -> str:
    """A stable hash of a step input; raises TypeError for inputs with no stable form."""
    import hashlib  # loads OpenSSL: only when a cache first keys an input

    blob = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or value <= 0):
        raise ConfigurationError(f"MemoryCache.{attribute.name} must be > 0 or None, got {value}")


@attrs.define
class MemoryCache:
    """An in-process LRU cache with an optional time-to-live.

    Args:
        max_entries: oldest-used entries are evicted past this many; None: unbounded.
        ttl_s: seconds an entry stays fresh; None: forever.
        key: ``fn(data) -> str`` replacing the default fingerprint of the input.
        clock: seconds as a float; pass ``trio.current_time`` to test TTLs with a
            mock clock (the default, ``time.monotonic``, is shared by every run).
    """

    max_entries: int | None = attrs.field(default=1024, validator=_positive_or_none)
    ttl_s: float | None = attrs.field(default=None, validator=_positive_or_none)
    key: Callable[[Any], str] | None = None
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[str, tuple[float, CachedOutput]] = attrs.field(
        init=False, factory=OrderedDict
    )

    def make_key(self, step_name: str, data: Any) -> str | None:
        return make_cache_key(self.key, step_name, data)

    async def get(self, key: str) -> CachedOutput | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if self.ttl_s is not None and self.clock() - stored_at > self.ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return copy.deepcopy(value)

    async def put(self, key: str, value: CachedOutput) -> None:
        self._entries[key] = (self.clock(), copy.deepcopy(value))
        self._entries.move_to_end(key)
        while self.max_entries is not None and len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def make_cache_key(custom: Callable[[Any], str] | None, step_name: str, data: Any) -> str | None:
    """``step_name`` plus the custom key or the input's fingerprint; None if unkeyable."""
    try:
        digest = custom(data) if custom is not None else fingerprint(data)
    except TypeError:
        return None
    return f"{step_name}:{digest}"
