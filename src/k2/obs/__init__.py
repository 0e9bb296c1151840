"""Observability: logging configuration."""

from k2.obs.logging import configure_logging

__all__ = ["configure_logging"]
