"""Errors of the Kafka transport."""

from __future__ import annotations

from k2.errors import DependencyUnavailableError, RetryableError


class KafkaUnavailableError(DependencyUnavailableError):
    """The Kafka cluster or the schema registry (``dependency`` says which) did not answer."""


class DeadLetterError(RetryableError):
    """A dead letter could not be stored; whoever sent it must not move past its source."""
