"""Prometheus metrics of a long-running command (a load, a producer, a feed or the sink)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from k2.obs.exposition import exported, process_metrics
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings


@contextmanager
def served_metrics(settings: K2Settings, component: str, port: int | None) -> Iterator[K2Metrics]:
    """The command's collectors, served while the block runs on ``port`` (or
    ``K2_OBS_METRICS_PORT``; under the platform profile on any free port) and registered with the
    platform's Prometheus.
    """
    metrics = process_metrics(settings, component)
    with exported(settings, metrics, component, port or settings.obs.metrics_port):
        yield metrics
