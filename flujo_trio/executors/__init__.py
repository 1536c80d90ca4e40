"""Executors that run the bodies of fan-out jobs somewhere else (see ``RayExecutor``).

Nothing here is imported by ``import flujo_trio``: each executor loads its cluster
library only when it is used.
"""
