"""Prometheus metrics of a long-running command (a producer, the sink, the live feed), served on
its own port and registered with the platform's Prometheus while the command runs.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack

from prometheus_client import CollectorRegistry, start_http_server

from k2.obs.discovery import registered
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings


def served_metrics(settings: K2Settings, job: str, port: int | None) -> K2Metrics:
    """K2's collectors on a fresh registry, served on ``127.0.0.1:port`` when a port is given.

    Under the platform profile the port is registered as ``job`` for the platform's Prometheus
    until the process exits (normally, on SIGINT, or on the SIGTERM K2's commands handle); a
    killed process's registration is pruned when Prometheus next starts.
    """
    registry = CollectorRegistry()
    if port is not None:
        start_http_server(port, addr="127.0.0.1", registry=registry)
        registration = ExitStack()
        registration.enter_context(registered(settings, job, port))
        atexit.register(registration.close)
    return K2Metrics(registry)
