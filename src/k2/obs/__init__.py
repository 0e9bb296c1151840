"""Observability: logging configuration and metrics."""

from k2.obs.logging import configure_logging
from k2.obs.metrics import K2Metrics

__all__ = ["K2Metrics", "configure_logging"]
