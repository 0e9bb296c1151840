"""Errors of getting market data in: producing it to Kafka."""

from __future__ import annotations

from k2.errors import K2Error, RetryableError


class DeliveryFailedError(RetryableError):
    """Kafka did not acknowledge some messages; producing the same rows again is safe."""


class ProducerFatalError(K2Error):
    """The producer hit a fatal error (its idempotence guarantees no longer hold) and cannot go
    on; a new process starts afresh.
    """
