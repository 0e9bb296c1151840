"""Errors of the Kafka → lake sink and of the live tail."""

from __future__ import annotations

from k2.errors import DependencyUnavailableError, RetryableError


class SinkError(RetryableError):
    """The sink stopped on an error it cannot pass (Kafka or the lake unreachable)."""


class LakeOutageError(SinkError):
    """The lake stayed unreachable longer than the sink waits (``K2_STREAM_LAKE_OUTAGE_S``);
    nothing consumed was lost.
    """


class TailUnavailableError(DependencyUnavailableError):
    """Kafka or the schema registry cannot be reached, so fresh rows cannot be read."""
