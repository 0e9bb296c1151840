"""Errors of the Kafka transport."""

from __future__ import annotations

from k2.errors import RetryableError


class KafkaUnavailableError(RetryableError):
    """The Kafka cluster or the schema registry did not answer."""


class DeadLetterError(RetryableError):
    """A dead letter could not be stored; whoever sent it must not move past its source."""
