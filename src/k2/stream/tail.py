"""The Kafka tail: rows already in Kafka that the sink has not committed to the lake yet.

A read of "fresh" data unions the lake with this tail. The tail starts, per partition, at the
offset the table's newest sink snapshot recorded (:mod:`k2.stream.checkpoint`) and ends at the
partition's high watermark taken when the read begins, so the two never leave a hole between
them; rows in both (the sink committed meanwhile) are dropped from the tail on ``message_id``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pyiceberg.table import Table

from k2.kafka.avro.codec import RecordCodec
from k2.kafka.partitions import Partition, Span, read_spans, reader, watermarks
from k2.kafka.schema_registry import WriterSchemas
from k2.kafka.topics import DataType, market_topic_pattern, parse_market_topic
from k2.lake.tables import TableSpec
from k2.resilience.breakers import Breakers, Dependency
from k2.settings import K2Settings
from k2.stream.checkpoint import committed_offsets, last_sink_snapshot
from k2.stream.errors import TailUnavailableError

#: Most messages read from one partition's tail; a sink that is far behind is a lag problem.
MAX_TAIL_PER_PARTITION = 200_000


@dataclass(frozen=True, slots=True)
class Tail:
    """Rows in Kafka beyond the lake, and how far the lake reaches.

    ``lake_complete_until`` is the commit time of the newest sink snapshot: every message
    produced before the sink consumed it up to that commit is in the lake. ``messages`` counts
    what was read from the tail, dead letters included.
    """

    rows: pa.Table
    messages: int
    lake_complete_until: datetime | None


class KafkaTail:
    """Reads the uncommitted tail of a table's topics; one reader serves one caller at a time."""

    def __init__(self, settings: K2Settings, breakers: Breakers, timeout_s: float = 5.0) -> None:
        self._kafka = settings.kafka
        self._breakers = breakers
        self._prefix = self._kafka.topic_prefix
        self._timeout = timeout_s
        self._made: Consumer | None = None
        self._schemas = WriterSchemas(self._kafka)
        self._codecs: dict[str, RecordCodec] = {}
        self._lock = threading.Lock()

    @property
    def _consumer(self) -> Consumer:
        """The Kafka consumer, made on the first read so an app that never reads live data never
        connects to Kafka.
        """
        if self._made is None:
            self._made = reader(self._kafka, "k2-tail-reader")
        return self._made

    def close(self) -> None:
        """Close the Kafka consumer and the registry client."""
        if self._made is not None:
            self._made.close()
        self._schemas.close()

    def read(self, spec: TableSpec, table: Table | None) -> Tail:
        """The tail of every topic feeding ``spec``'s table (``table`` None: nothing committed yet).

        Raises:
            TailUnavailableError: when Kafka or the registry does not answer.
            BreakerOpenError: Kafka's circuit breaker is open; Kafka was not asked.
        """
        with self._lock, self._breakers.guard(Dependency.KAFKA):
            try:
                return self._read(spec, table)
            except (KafkaException, SchemaRegistryError, OSError) as error:
                raise TailUnavailableError(
                    f"the Kafka tail cannot be read: {error}", Dependency.KAFKA
                ) from error

    def probe(self) -> None:
        """Ask Kafka for its metadata through Kafka's breaker: the half-open call that closes it.

        Raises:
            TailUnavailableError: Kafka does not answer.
            BreakerOpenError: Kafka's circuit breaker is open and not yet due for a probe.
        """
        with self._lock, self._breakers.guard(Dependency.KAFKA):
            try:
                self._consumer.list_topics(timeout=self._timeout)
            except KafkaException as error:
                raise TailUnavailableError(f"Kafka does not answer: {error}", Dependency.KAFKA) from error

    def _read(self, spec: TableSpec, table: Table | None) -> Tail:
        wanted = DataType.of(spec.record)
        recorded = committed_offsets(table) if table is not None else {}
        metadata = self._consumer.list_topics(timeout=self._timeout)
        spans: dict[Partition, Span] = {}
        for name, topic in metadata.topics.items():
            if not _matches(name, self._prefix) or parse_market_topic(name, self._prefix)[1] is not wanted:
                continue
            for partition in topic.partitions:
                held = watermarks(self._consumer, name, partition, self._timeout)
                start = recorded.get(name, {}).get(partition, held.start)
                spans[(name, partition)] = Span(
                    max(start, held.start, held.end - MAX_TAIL_PER_PARTITION), held.end
                )
        try:
            values = read_spans(self._consumer, spans, self._timeout)
        except TimeoutError as error:
            late = f"Kafka did not deliver the tail within {self._timeout:.0f} s"
            raise TailUnavailableError(late, Dependency.KAFKA) from error
        codec = self._codecs.setdefault(spec.name, RecordCodec(spec.record))
        rows = (
            codec.decode(values, self._schemas).rows if values else spec.record.arrow_schema().empty_table()
        )
        if rows.num_rows:
            rows = rows.take(
                pc.sort_indices(rows, [("timestamp", "ascending"), ("source_sequence", "ascending")])
            )
        return Tail(rows, len(values), _last_sink_commit(table))


def _matches(topic: str, prefix: str) -> bool:
    return re.fullmatch(market_topic_pattern(prefix).removeprefix("^"), topic) is not None


def _last_sink_commit(table: Table | None) -> datetime | None:
    """Commit time of the newest snapshot that recorded Kafka offsets."""
    snapshot = last_sink_snapshot(table) if table is not None else None
    return datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC) if snapshot else None
