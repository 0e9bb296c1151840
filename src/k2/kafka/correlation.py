"""Correlation ids on Kafka messages: one id per batch a producer sends, carried in a header from
the producer to the sink's logs (and to a dead letter's headers), so a message can be followed.

An id is ``<run>-<batch>``: ``run`` names the producing process's run (logged when it starts),
``batch`` counts its batches. The API's ``X-Correlation-ID`` names a request the same way.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator

from confluent_kafka import Message

#: The header holding a message's correlation id.
CORRELATION_HEADER = "k2-correlation-id"


class CorrelationIds:
    """The ids of one producing run: ``next()`` names its next batch."""

    def __init__(self, run: str | None = None) -> None:
        #: The run's id, the prefix of every batch id.
        self.run = run or uuid.uuid4().hex[:12]
        self._batches: Iterator[int] = itertools.count(1)

    def next(self) -> str:
        """The id of the run's next batch."""
        return f"{self.run}-{next(self._batches)}"


def correlation_id(message: Message) -> str | None:
    """The correlation id a message carries, if any."""
    headers = message.headers() or []
    value = (
        dict(headers).get(CORRELATION_HEADER)
        if isinstance(headers, list)
        else headers.get(CORRELATION_HEADER)
    )
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def correlation_ids(messages: Iterable[Message]) -> set[str]:
    """The distinct correlation ids of ``messages``."""
    ids = {correlation_id(m) for m in messages}
    ids.discard(None)
    return {i for i in ids if i is not None}
