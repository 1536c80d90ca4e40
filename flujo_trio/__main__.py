"""``python -m flujo_trio`` is the ``flujo-trio`` command."""

from .cli import main

main()
