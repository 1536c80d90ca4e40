"""Times on the command line: ``--since`` in, times with their zone out.

``--since`` takes an ISO 8601 time (``2026-05-01``, ``2026-05-01T14:30``,
``2026-05-01T14:30+02:00``, ``...Z``; without a zone it is local time, as a person
reading their clock means it) or a span back from now: a number and one of
``s`` (seconds), ``m`` (minutes), ``h`` (hours), ``d`` (days), ``w`` (weeks), such as
``30m``, ``2h`` or ``3d``. Tables show local time with the zone's name; JSON shows
ISO 8601 with the offset, as stored (UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from ..context import utc_now

_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: What stores put in a damaged row's time fields: shown as unknown.
NEVER = datetime.min.replace(tzinfo=UTC)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The moment ``text`` names, timezone-aware; ValueError says what is accepted."""
    span = _SPAN.match(text)
    if span is not None:
        amount, unit = int(span.group(1)), span.group(2)
        return (now or utc_now()) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give an ISO time such as 2026-05-01 or "
            "2026-05-01T14:30+02:00, or a span back from now such as 30m, 2h, 3d or 1w"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as the person typing it means it
    return moment.astimezone(UTC)


def since_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback for ``--since``: the moment it names, or a usage error."""
    if value is None:
        return None
    try:
        return parse_since(value)
    except (ValueError, OverflowError) as error:
        raise click.BadParameter(str(error), ctx, param) from None


def shown_time(moment: datetime) -> str:
    """Local time with its zone, e.g. ``2026-05-01 14:30:02 CEST``; ``?`` if unknown."""
    if moment == NEVER:
        return "?"
    local = moment.astimezone()
    zone = local.strftime("%Z") or local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {zone}"


def json_time(moment: datetime) -> str | None:
    """ISO 8601 with the offset; None when unknown (a damaged row)."""
    return None if moment == NEVER else moment.isoformat()
