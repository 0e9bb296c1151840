"""Throughput of K2's streaming path beside librdkafka alone, one step at a time: producing
(``MarketProducer`` and ``RecordCodec.encode``) and consuming into Iceberg (``Sink`` and
``RecordCodec.decode``). :mod:`benchmarks.stream.section` runs these steps and reports them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry
from pyiceberg.table import Table as IcebergTable

from benchmarks.common import BenchmarkError
from k2.ingest.producer import (
    ENCODE_ROWS,
    QUEUE_FULL_WAIT_S,
    MarketProducer,
    flush_timeout_s,
    producer_config,
)
from k2.ingest.sources.base import SourceBatch
from k2.kafka.avro.codec import Decoded, RecordCodec
from k2.kafka.schema_registry import WriterSchemas
from k2.kafka.topics import DataType, market_topic
from k2.lake.catalog import close_catalog, open_catalog
from k2.lake.tables import TRADES
from k2.lake.writer import AppendResult, LakeWriter
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings, KafkaSettings
from k2.stream.sink import Sink, SinkReport

#: Longest any one drain may take before the benchmark gives up.
TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Rate:
    """Messages handled in a span of wall time."""

    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def micros(self) -> float:
        return self.seconds / self.messages * 1e6


@dataclass
class SinkClock:
    """Where the sink's wall time went; perf_counter instants and summed seconds."""

    first_take: float = 0.0
    last_commit: float = 0.0
    take: float = 0.0
    decode: float = 0.0
    commit: float = 0.0
    append: float = 0.0
    commits: list[float] = field(default_factory=list)


class _TimedCodec(RecordCodec):
    def __init__(self, clock: SinkClock) -> None:
        super().__init__(TRADES.record)
        self._clock = clock

    def decode(self, *args: Any, **kwargs: Any) -> Decoded:
        started = time.perf_counter()
        try:
            return super().decode(*args, **kwargs)
        finally:
            self._clock.decode += time.perf_counter() - started


class _TimedWriter(LakeWriter):
    def __init__(self, settings: K2Settings, clock: SinkClock) -> None:
        catalog = open_catalog(settings)
        super().__init__(catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
        self._clock = clock

    def append(self, *args: Any, **kwargs: Any) -> AppendResult:
        started = time.perf_counter()
        try:
            return super().append(*args, **kwargs)
        finally:
            self._clock.append += time.perf_counter() - started


class _TimedSink(Sink):
    """K2's sink, timed; it stops itself once ``expected`` messages were consumed."""

    def __init__(self, settings: K2Settings, clock: SinkClock, stop: threading.Event, expected: int) -> None:
        self.writer = _TimedWriter(settings, clock)
        super().__init__(settings, self.writer, K2Metrics(CollectorRegistry()))
        self._codecs[TRADES.name] = _TimedCodec(clock)
        self._clock, self._stop, self._expected = clock, stop, expected

    def _take(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        self._clock.first_take = self._clock.first_take or started
        super()._take(messages)
        self._clock.take += time.perf_counter() - started
        if self.report.messages >= self._expected:
            self._stop.set()

    def _commit(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        super()._commit(*args, **kwargs)
        self._clock.last_commit = time.perf_counter()
        self._clock.commits.append(self._clock.last_commit - started)
        self._clock.commit += self._clock.last_commit - started


def topic_of(kafka: KafkaSettings, rows: pa.Table) -> str:
    asset_class, exchange = rows["asset_class"][0].as_py(), rows["exchange"][0].as_py()
    return market_topic(asset_class, DataType.TRADES, exchange, kafka.topic_prefix)


def messages_in(kafka: KafkaSettings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": "k2-bench-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1] for p in partitions)
    finally:
        consumer.close()


def encode(rows: pa.Table, schema_id: int) -> tuple[list[bytes], Rate]:
    """``RecordCodec.encode`` alone, in the chunks ``MarketProducer`` encodes."""
    codec = RecordCodec(TRADES.record)
    values: list[bytes] = []
    started = time.perf_counter()
    for start in range(0, rows.num_rows, ENCODE_ROWS):
        values += codec.encode(rows.slice(start, ENCODE_ROWS), schema_id)
    return values, Rate(len(values), time.perf_counter() - started)


def produce_raw(kafka: KafkaSettings, topic: str, keys: list[str], values: list[bytes]) -> Rate:
    """librdkafka with K2's producer settings on pre-encoded values, until all are acknowledged."""
    producer = Producer(producer_config(kafka))
    produce = producer.produce
    started = time.perf_counter()
    for key, value in zip(keys, values, strict=True):
        try:
            produce(topic, value, key)
        except BufferError:
            while True:
                producer.poll(QUEUE_FULL_WAIT_S)
                try:
                    produce(topic, value, key)
                except BufferError:
                    continue
                break
    unsent = producer.flush(flush_timeout_s(kafka))
    seconds = time.perf_counter() - started
    if unsent or messages_in(kafka, topic) != len(values):
        raise BenchmarkError(f"the raw producer left {unsent} messages unsent")
    return Rate(len(values), seconds)


def produce_k2(kafka: KafkaSettings, rows: pa.Table) -> Rate:
    """``MarketProducer``: encode, produce and wait until the broker acknowledged every message."""
    with MarketProducer(kafka) as producer:
        started = time.perf_counter()
        producer.produce_batch(SourceBatch(TRADES, rows, rows.num_rows, 0, unique_ids=True))
        stats = producer.flush()
        seconds = time.perf_counter() - started
    if stats.messages != rows.num_rows:
        raise BenchmarkError(f"MarketProducer delivered {stats.messages} of {rows.num_rows} messages")
    return Rate(stats.messages, seconds)


def drain_raw(settings: K2Settings, topic: str, expected: int) -> tuple[list[bytes | None], Rate]:
    """librdkafka reading the topic from the start, values kept, nothing decoded."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.stream.group_id}-raw",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    values: list[bytes | None] = []
    first = 0.0
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + TIMEOUT_S
        while len(values) < expected:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the raw consumer read {len(values)} of {expected} messages")
            messages = consumer.consume(settings.stream.poll_messages, timeout=1.0)
            first = first or (time.perf_counter() if messages else 0.0)
            values += [m.value() for m in messages if m.error() is None]
        seconds = time.perf_counter() - first
    finally:
        consumer.close()
    return values, Rate(len(values), seconds)


def decode(settings: K2Settings, values: list[bytes | None], schema_id: int) -> Rate:
    """``RecordCodec.decode`` alone, in the sink's poll-sized chunks, with the sink's schema lookup."""
    schemas = WriterSchemas(settings.kafka)
    schemas(schema_id)  # fetched once, as the sink does
    codec = RecordCodec(TRADES.record)
    step = settings.stream.poll_messages
    rows = 0
    started = time.perf_counter()
    for start in range(0, len(values), step):
        rows += codec.decode(values[start : start + step], schemas).rows.num_rows
    seconds = time.perf_counter() - started
    schemas.close()
    if rows != len(values):
        raise BenchmarkError(f"{len(values) - rows} values did not decode")
    return Rate(rows, seconds)


def sink(
    settings: K2Settings, expected: int, timeout_s: float = TIMEOUT_S
) -> tuple[SinkReport, SinkClock, list[tuple[int, int]]]:
    """The sink from a fresh lake until ``expected`` messages are consumed and committed (or
    ``timeout_s`` has passed, which fails).
    """
    clock, stop = SinkClock(), threading.Event()
    watchdog = threading.Timer(timeout_s, stop.set)
    watchdog.start()
    timed = _TimedSink(settings, clock, stop, expected)
    try:
        report = timed.run(stop)
        commits = commits_of(timed.writer.table(TRADES))
    finally:
        watchdog.cancel()
        close_catalog(timed.writer.catalog)
    if report.rows_written != expected:
        raise BenchmarkError(f"the sink wrote {report.rows_written} of {expected} rows")
    return report, clock, commits


def commits_of(table: IcebergTable) -> list[tuple[int, int]]:
    """(rows, data files) added by each snapshot of ``table``."""
    found = []
    for snapshot in table.snapshots():
        summary = snapshot.summary
        if summary is not None:
            found.append((int(summary.get("added-records") or 0), int(summary.get("added-data-files") or 0)))
    return found
