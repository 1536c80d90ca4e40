"""The ``flujo-trio`` console script (needs the ``click`` and ``rich`` dependencies)."""

from .app import main as main
