"""The dead-letter topic: messages the sink cannot decode, kept whole with why and where from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from k2.errors import RetryableError

#: Headers of a dead letter.
ERROR_HEADER = "k2.error"
TOPIC_HEADER = "k2.source.topic"
PARTITION_HEADER = "k2.source.partition"
OFFSET_HEADER = "k2.source.offset"


class DeadLetterError(RetryableError):
    """A dead letter could not be delivered; the sink must not move past its source offset."""


class DeadLetters:
    """Sends undecodable messages to a dead-letter topic, idempotently and with ``acks=all``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._producer = Producer({**config, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        self._failures: list[str] = []
        self.sent = 0

    def send(self, topic: str, message: Message, error: str) -> None:
        """Queue ``message`` for ``topic`` with the error and its source position as headers."""
        headers: list[tuple[str, str | bytes | None]] = [
            (ERROR_HEADER, error.encode()),
            (TOPIC_HEADER, (message.topic() or "").encode()),
            (PARTITION_HEADER, str(message.partition()).encode()),
            (OFFSET_HEADER, str(message.offset()).encode()),
        ]
        self._producer.produce(
            topic, value=message.value(), key=message.key(), headers=headers, on_delivery=self._delivered
        )
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failures.append(str(error))
        else:
            self.sent += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued dead letter is stored.

        Raises:
            DeadLetterError: when one was refused or not stored in time.
        """
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failures:
            failures, self._failures = self._failures, []
            raise DeadLetterError(f"dead letters not stored: {remaining} pending, failures {failures[:3]}")
