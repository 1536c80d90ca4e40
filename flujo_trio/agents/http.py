"""What a provider's HTTP error means for the step: retry or not, and after how long.

Shared by the adapters, so an OpenAI-compatible endpoint and a pydantic-ai model
that fail the same way are retried the same way.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

#: Statuses another attempt cannot fix (bad request, key, permissions, model, payload).
FATAL_STATUSES = frozenset({400, 401, 403, 404, 422})


def retry_after(headers: Any) -> float | None:
    """Seconds the provider asked to wait: ``retry-after-ms``, or ``retry-after`` given
    in seconds or as an HTTP date."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
