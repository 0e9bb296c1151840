"""Bounded partition reads: each partition's messages from a start offset up to an end offset
taken before the read (its high watermark then), so a read ends even while producers go on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition

from k2.kafka.clients import client_config
from k2.settings import KafkaSettings

Partition = tuple[str, int]
#: Messages taken from the consumer at a time.
BATCH_MESSAGES = 10_000
#: Longest wait for one batch.
BATCH_WAIT_S = 0.2


@dataclass(frozen=True, slots=True)
class Span:
    """Offsets ``[start, end)`` of one partition."""

    start: int
    end: int


def reader(settings: KafkaSettings, group_id: str) -> Consumer:
    """A consumer for bounded reads: assigned partitions, no committed offsets, committed
    (non-transactional or committed transactional) messages only, and end-of-partition events.
    """
    return Consumer(
        client_config(
            settings,
            group_id,
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            },
        )
    )


def watermarks(consumer: Consumer, topic: str, partition: int, timeout_s: float) -> Span:
    """The partition's low and high watermarks: the offsets it holds now."""
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
    return Span(low, high)


def read_spans(consumer: Consumer, spans: Mapping[Partition, Span], timeout_s: float) -> list[bytes | None]:
    """The values of each partition's messages in its span, partition by partition in offset
    order (partitions interleaved as they arrive); empty spans are skipped.

    Raises:
        TimeoutError: a partition did not deliver its span within ``timeout_s``.
    """
    remaining = {key: span.end for key, span in spans.items() if span.start < span.end}
    if not remaining:
        return []
    consumer.assign(
        [TopicPartition(topic, partition, spans[(topic, partition)].start) for topic, partition in remaining]
    )
    values: list[bytes | None] = []
    deadline = time.monotonic() + timeout_s
    try:
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka did not deliver {sorted(remaining)} within {timeout_s:g} s")
            for message in consumer.consume(BATCH_MESSAGES, timeout=BATCH_WAIT_S):
                key = (message.topic() or "", message.partition() or 0)
                if key not in remaining:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        del remaining[key]
                    continue
                offset = message.offset() or 0
                if offset < remaining[key]:
                    values.append(message.value())
                if offset + 1 >= remaining[key]:
                    del remaining[key]
    finally:
        consumer.unassign()
    return values
