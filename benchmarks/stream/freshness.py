"""Freshness of streamed trades: how long after ``produce()`` a message shows up in a lake query,
through ``KafkaTail.read`` (the F15 tail, joined with the lake as the API does), and, as the
limit, in a plain librdkafka consumer reading the same topic.

The sink runs on a thread of its own at the configured commit policy (10 s or 500k rows by
default) while :class:`MarketProducer` sends small batches at a steady rate. Three watchers run
beside it, each on its own thread: one polls the lake through the query engine (Iceberg plan +
DuckDB over the planned files), one calls ``KafkaTail.read`` as the API would, and one consumes
the topic raw (no Avro decoding: each value's body is looked up among the produced ones).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from benchmarks.common import log
from k2.ingest.producer import MarketProducer
from k2.ingest.sources.base import SourceBatch
from k2.kafka.avro.codec import HEADER, RecordCodec
from k2.kafka.topics import DataType, market_topic
from k2.lake.catalog import close_catalog, open_catalog
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import TRADES
from k2.lake.writer import LakeWriter
from k2.obs.metrics import K2Metrics
from k2.query.engine import QueryEngine
from k2.resilience.breakers import Breakers
from k2.settings import K2Settings
from k2.stream.sink import Sink
from k2.stream.tail import KafkaTail

#: Messages per produced batch; batches go out every BATCH_MESSAGES / rate seconds.
BATCH_MESSAGES = 100
#: Pause between two polls of the lake, and between two tail reads.
LAKE_POLL_S = 0.2
TAIL_POLL_S = 0.1
#: How long the warm-up batch and the last batch may take to reach the lake, past the interval.
VISIBLE_GRACE_S = 60.0


class FreshnessError(RuntimeError):
    """A watcher failed, or messages never became visible."""


@dataclass
class Freshness:
    """Per-message delays in seconds from ``produce()`` to visible, and what the watchers cost."""

    messages: int
    seconds: float
    lake: list[float]
    api: list[float]
    raw: list[float]
    lake_polls: list[float]
    tail_reads: list[float]
    tail_sizes: list[int]
    tail_first: int
    commits: int
    commit_seconds: float

    @property
    def rate(self) -> float:
        """Messages produced per second."""
        return self.messages / self.seconds


@dataclass
class _Watch:
    """First time each message id was seen, and how long each poll took."""

    seen: dict[str, float] = field(default_factory=dict)
    polls: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def saw(self, ids: list[str], at: float) -> None:
        for message_id in ids:
            self.seen.setdefault(message_id, at)


def _engine(settings: K2Settings) -> QueryEngine:
    return QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)


def _watch_lake(settings: K2Settings, stop: threading.Event, watch: _Watch) -> None:
    """Poll the lake: on each new snapshot, read every message id through the query engine."""
    engine = _engine(settings)
    last: int | None = None
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                scan = engine.scan(TRADES)
            except TableNotFoundError:
                scan = None
            if scan is not None and scan.snapshot_id != last and scan.paths:
                ids = engine.run(f"SELECT message_id FROM {scan.source_sql}", {"paths": scan.paths})
                watch.saw(ids["message_id"].to_pylist(), time.perf_counter())
                last = scan.snapshot_id
            watch.polls.append(time.perf_counter() - started)
            stop.wait(LAKE_POLL_S)
    finally:
        engine.close()
        close_catalog(engine.catalog)


def _watch_tail(settings: K2Settings, stop: threading.Event, watch: _Watch) -> None:
    """Read the Kafka tail as the API does: load the table, then ``KafkaTail.read``."""
    engine = _engine(settings)
    tail = KafkaTail(settings, Breakers(settings.resilience))
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                table = engine.table(TRADES)
            except TableNotFoundError:
                table = None
            read = tail.read(TRADES, table)
            watch.saw(read.rows["message_id"].to_pylist(), time.perf_counter())
            watch.sizes.append(read.messages)
            watch.polls.append(time.perf_counter() - started)
            stop.wait(TAIL_POLL_S)
    finally:
        tail.close()
        engine.close()
        close_catalog(engine.catalog)


def _watch_raw(
    settings: K2Settings, topic: str, bodies: dict[bytes, str], stop: threading.Event, watch: _Watch
) -> None:
    """Consume the topic from its current end with librdkafka alone; match values by their body."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.stream.group_id}-raw",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign(
            [
                TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1])
                for p in partitions
            ]
        )
        while not stop.is_set():
            messages = consumer.consume(1000, timeout=0.1)
            at = time.perf_counter()
            ids = [bodies.get((m.value() or b"")[HEADER.size :], "") for m in messages if m.error() is None]
            watch.saw([i for i in ids if i], at)
    finally:
        consumer.close()


def _sink(settings: K2Settings, stop: threading.Event, registry: CollectorRegistry) -> None:
    catalog = open_catalog(settings)
    try:
        writer = LakeWriter(catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
        Sink(settings, writer, K2Metrics(registry)).run(stop)
    finally:
        close_catalog(catalog)


def _until(done: Callable[[], bool], timeout_s: float, what: str, errors: list[BaseException]) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if errors:
            raise FreshnessError(f"a thread failed while waiting for {what}") from errors[0]
        if time.monotonic() > deadline:
            raise FreshnessError(f"{what} took over {timeout_s:.0f} s")
        time.sleep(0.05)


def _bodies(batches: list[pa.Table]) -> dict[bytes, str]:
    """The message id of each value body (the value after its header) the batches encode to."""
    codec = RecordCodec(TRADES.record)
    return {
        value[HEADER.size :]: message_id
        for batch in batches
        for value, message_id in zip(codec.encode(batch, 0), batch["message_id"].to_pylist(), strict=True)
    }


def _produce_steadily(
    producer: MarketProducer,
    batches: list[pa.Table],
    per_second: int,
    produced: dict[str, float],
    errors: list[BaseException],
) -> float:
    """Send one batch every ``BATCH_MESSAGES / per_second`` seconds, noting when each message went;
    return the seconds it took. Flushes at the end.
    """
    period = BATCH_MESSAGES / per_second
    started = time.perf_counter()
    for index, batch in enumerate(batches):
        pause = started + index * period - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        at = time.perf_counter()
        for message_id in batch["message_id"].to_pylist():
            produced[message_id] = at
        producer.produce_batch(SourceBatch(TRADES, batch, batch.num_rows, 0, unique_ids=True))
        if errors:
            raise FreshnessError("a thread failed while producing") from errors[0]
    spent = time.perf_counter() - started
    producer.flush()
    return spent


def measure(settings: K2Settings, rows: pa.Table, seconds: float, per_second: int) -> Freshness:
    """Produce ``rows`` (time-ordered trades) at ``per_second`` for ``seconds`` into the running sink.

    Raises:
        FreshnessError: when a thread fails or a message never reaches the lake.
    """
    count = int(seconds * per_second) // BATCH_MESSAGES
    batches = [rows.slice(i * BATCH_MESSAGES, BATCH_MESSAGES) for i in range(count)]
    warmup = rows.slice(count * BATCH_MESSAGES, BATCH_MESSAGES)
    bodies = _bodies(batches)
    venue = (rows["asset_class"][0].as_py(), rows["exchange"][0].as_py())
    topic = market_topic(venue[0], DataType.TRADES, venue[1], settings.kafka.topic_prefix)
    stop = threading.Event()
    errors: list[BaseException] = []
    lake, tail, raw = _Watch(), _Watch(), _Watch()
    registry = CollectorRegistry()
    produced: dict[str, float] = {}
    grace = settings.stream.commit_interval_s + VISIBLE_GRACE_S

    def guarded(target: Callable[[], None]) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        return threading.Thread(target=body, daemon=True)

    close_catalog(open_catalog(settings))  # the namespace, made once before the threads open it
    with MarketProducer(settings.kafka) as producer:
        producer.produce_batch(SourceBatch(TRADES, warmup, warmup.num_rows, 0, unique_ids=True))
        producer.flush()  # the topic, the dead-letter topic and the schema exist from here on
        threads = [
            guarded(lambda: _sink(settings, stop, registry)),
            guarded(lambda: _watch_lake(settings, stop, lake)),
            guarded(lambda: _watch_tail(settings, stop, tail)),
            guarded(lambda: _watch_raw(settings, topic, bodies, stop, raw)),
        ]
        for thread in threads:
            thread.start()
        try:
            warm_ids = warmup["message_id"].to_pylist()
            log(
                f"freshness: waiting for the warm-up batch to reach the lake (commits every "
                f"{settings.stream.commit_interval_s:g} s)"
            )
            _until(lambda: all(i in lake.seen for i in warm_ids), grace, "the warm-up batch", errors)
            log(f"freshness: producing {count * BATCH_MESSAGES:,} trades at {per_second:,}/s")
            spent = _produce_steadily(producer, batches, per_second, produced, errors)
            _until(lambda: all(i in lake.seen for i in produced), grace, "the last batch", errors)
            _until(lambda: all(i in raw.seen for i in produced), 10.0, "the raw consumer", errors)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
    if errors:
        raise FreshnessError("a freshness thread failed") from errors[0]
    labels = {"table": TRADES.name}
    return Freshness(
        messages=len(produced),
        seconds=spent,
        lake=[lake.seen[i] - at for i, at in produced.items()],
        api=[min(lake.seen[i], tail.seen.get(i, lake.seen[i])) - at for i, at in produced.items()],
        raw=[raw.seen[i] - at for i, at in produced.items()],
        lake_polls=lake.polls,
        tail_reads=tail.polls,
        tail_sizes=tail.sizes,
        tail_first=sum(1 for i in produced if tail.seen.get(i, float("inf")) < lake.seen[i]),
        commits=int(registry.get_sample_value("k2_sink_commits_total", labels) or 0),
        commit_seconds=registry.get_sample_value("k2_sink_commit_duration_seconds_sum", labels) or 0.0,
    )
