"""A class that stored data must never be able to reach.

Importing this module, or constructing its classes, appends a line to the file named
by ``FLUJO_TRIO_CANARY_LOG``: a test that tampers a stored row to name these classes,
then loads it, proves nothing was imported or called when that file stays absent.
Nothing in the test process imports this module.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from flujo_trio import PipelineContext


def _record(event: str) -> None:
    path = os.environ.get("FLUJO_TRIO_CANARY_LOG")
    if path:
        with open(path, "a") as log:
            log.write(event + "\n")


_record("imported")


@attrs.define
class Canary:
    value: Any = None

    def __attrs_post_init__(self) -> None:
        _record("Canary called")


@attrs.define
class CanaryContext(PipelineContext):
    def __attrs_post_init__(self) -> None:
        _record("CanaryContext called")
