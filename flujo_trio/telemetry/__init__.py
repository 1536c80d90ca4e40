"""Observability adapters. ``flujo_trio.telemetry.otel`` needs the ``otel`` extra."""
