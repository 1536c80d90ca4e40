"""Importable model classes for storage tests (stored runs name classes by module path)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from flujo_trio import PipelineContext


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(enum.StrEnum):
    CALM = "calm"
    ANGRY = "angry"


@attrs.define
class Address:
    city: str
    zip_code: str | None = None


@attrs.define
class Profile:
    name: str
    color: Color
    address: Address | None = None
    tags: set[str] = attrs.field(factory=set)


@attrs.define
class RichContext(PipelineContext):
    color: Color = Color.RED
    priority: Priority = Priority.LOW
    mood: Mood = Mood.CALM
    profile: Profile | None = None
    when: datetime | None = None
    amount: Decimal = Decimal("0")
    ids: set[int] = attrs.field(factory=set)
    counts: dict[str, int] = attrs.field(factory=dict)
    maybe: int | str | None = None
    anything: Any = None


@attrs.define
class DeeperContext(RichContext):
    level: int = 0
