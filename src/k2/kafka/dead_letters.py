"""Dead letters: what K2 could not read, kept whole on a dead-letter topic with why and where from.

One writer and one header scheme for every place that finds such a message (the live feed's
unreadable frames, the sink's undecodable Kafka messages):

- ``k2.error``: what was wrong, for a person;
- ``k2.error.reason``: a short code to count and filter by (``malformed``, ``undecodable``, …);
- ``k2.source``: what found it (``feed:binance``, ``sink``);
- ``k2.source.topic``, ``k2.source.partition``, ``k2.source.offset``: where in Kafka it was
  read from, when it came from Kafka.

The writer is idempotent with ``acks=all``, creates a dead-letter topic the first time it writes
to it, waits while librdkafka's local queue is full, and :meth:`DeadLetterWriter.flush` raises
when a letter was not stored, so none is lost silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from k2.kafka.admin import ensure_topics
from k2.kafka.clients import client_config
from k2.kafka.correlation import CORRELATION_HEADER, correlation_id
from k2.kafka.errors import DeadLetterError
from k2.settings import KafkaSettings

ERROR_HEADER = "k2.error"
REASON_HEADER = "k2.error.reason"
SOURCE_HEADER = "k2.source"
TOPIC_HEADER = "k2.source.topic"
PARTITION_HEADER = "k2.source.partition"
OFFSET_HEADER = "k2.source.offset"

#: Dead letters are few; one partition keeps them in the order they were found.
PARTITIONS = 1
#: How long to serve delivery reports before trying again a letter refused for a full queue.
QUEUE_FULL_WAIT_S = 0.05
#: How long a flush may take by default.
FLUSH_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a dead letter came from: what found it and, for a Kafka message, its position."""

    source: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    correlation_id: str | None = None

    @classmethod
    def of(cls, message: Message, source: str) -> Origin:
        """The position of a consumed ``message``, found by ``source``."""
        return cls(source, message.topic(), message.partition(), message.offset(), correlation_id(message))


class DeadLetterWriter:
    """Writes dead letters; call :meth:`flush` before moving past what they came from.

    Attributes:
        sent: dead letters Kafka acknowledged.
    """

    def __init__(self, settings: KafkaSettings, client_id: str) -> None:
        self._settings = settings
        self._producer = Producer(
            client_config(settings, client_id, {"enable.idempotence": True, "acks": "all", "linger.ms": 5})
        )
        self._topics: set[str] = set()
        self._failures: list[str] = []
        self.sent = 0

    def send(
        self, topic: str, value: bytes | None, key: bytes | None, *, reason: str, error: str, origin: Origin
    ) -> None:
        """Queue ``value`` for ``topic`` with why (``reason``, ``error``) and where from.

        Raises:
            KafkaUnavailableError: the topic did not exist and could not be created.
        """
        if topic not in self._topics:
            ensure_topics(self._settings, {topic: PARTITIONS})
            self._topics.add(topic)
        headers: list[tuple[str, str | bytes | None]] = [
            (ERROR_HEADER, error.encode()),
            (REASON_HEADER, reason.encode()),
            (SOURCE_HEADER, origin.source.encode()),
        ]
        if origin.topic is not None:
            headers += [
                (TOPIC_HEADER, origin.topic.encode()),
                (PARTITION_HEADER, str(origin.partition).encode()),
                (OFFSET_HEADER, str(origin.offset).encode()),
            ]
        if origin.correlation_id is not None:
            headers.append((CORRELATION_HEADER, origin.correlation_id.encode()))
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(QUEUE_FULL_WAIT_S)
        self._producer.poll(0)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failures.append(error.str())
        else:
            self.sent += 1

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until every queued dead letter is stored.

        Raises:
            DeadLetterError: one was refused or not stored in time.
        """
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failures:
            failures, self._failures = self._failures, []
            raise DeadLetterError(f"dead letters not stored: {remaining} pending, e.g. {failures[:3]}")
