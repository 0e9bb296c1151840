"""Prometheus metrics of a long-running command (a producer or the sink), served on its own port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from k2.obs.metrics import K2Metrics


def served_metrics(port: int | None) -> K2Metrics:
    """K2's collectors on a fresh registry, served on ``127.0.0.1:port`` when a port is given."""
    registry = CollectorRegistry()
    if port is not None:
        start_http_server(port, addr="127.0.0.1", registry=registry)
    return K2Metrics(registry)
