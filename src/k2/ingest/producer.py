"""Market data into Kafka: trades and quotes as Avro messages keyed by symbol, none lost.

:class:`MarketProducer` wraps one idempotent ``confluent_kafka.Producer`` (``acks=all``, so a
message counts as delivered only once every in-sync replica has it, and broker retries never
duplicate or reorder it). The first batch for a venue and data type creates its topic and the
venue's dead-letter topic when missing, registers the record's v2 Avro schema under the topic's
subject (``<topic>-value``) with BACKWARD compatibility, and remembers the schema id every value is
framed with. Rows are encoded in chunks by :class:`~k2.kafka.avro.codec.RecordCodec`; each message is
keyed by its symbol, so one symbol's ticks stay in order on one partition. Delivery callbacks count
what the broker acknowledged and what failed; :meth:`MarketProducer.flush` raises
:class:`DeliveryFailedError` when anything failed, so a loss is never silent.
(:class:`~k2.ingest.loader.Loader` runs a whole source this way, given a producer.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import pyarrow as pa
import pyarrow.compute as pc
import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from k2.errors import K2Error
from k2.ingest.errors import DeliveryFailedError, ProducerFatalError
from k2.ingest.sources.base import SourceBatch
from k2.kafka import dead_letters
from k2.kafka.admin import ensure_topics
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.clients import ConfigValue, client_config, registry_client
from k2.kafka.correlation import CORRELATION_HEADER, CorrelationIds
from k2.kafka.schema_registry import register
from k2.kafka.topics import DataType, dlq_topic, market_topic, value_subject
from k2.obs.metrics import K2Metrics
from k2.resilience.breakers import Breakers, Dependency
from k2.settings import KafkaSettings, ResilienceSettings

#: Message headers as confluent-kafka takes and returns them.
Headers = list[tuple[str, str | bytes | None]]

log = structlog.get_logger(__name__)

CLIENT_ID = "k2-producer"
#: The producer's latency histogram samples one acknowledged message in this many (a labelled
#: metric per message would cost more than its send).
LATENCY_SAMPLE = 64
#: Batches compress well (repeated symbols, ids, venue fields); lz4 costs the least CPU per byte.
COMPRESSION = "lz4"
#: Wait this long for a batch to fill: a bulk load fills batches long before; a live feed pays
#: at most this much latency.
LINGER_MS = 20
#: Largest batch per partition, in bytes and in messages (~115-byte trades: the bytes bind first).
BATCH_BYTES = 1_000_000
BATCH_MESSAGES = 10_000
#: Messages librdkafka may hold unacknowledged before produce() refuses more (BufferError).
QUEUE_MESSAGES = 500_000
#: A flush waits this much longer than the delivery timeout, by which every queued message was
#: acknowledged or failed.
FLUSH_MARGIN_S = 30.0
#: How long a producer left on an exception still tries to deliver what it queued.
ABANDON_TIMEOUT_S = 10.0
#: How long to serve delivery reports before retrying a produce() refused for a full queue.
QUEUE_FULL_WAIT_S = 0.05
#: Rows encoded at once: bounds the encoded values held in memory while librdkafka sends.
ENCODE_ROWS = 50_000
#: Delivery failures quoted in the error; the rest are only counted.
QUOTED_FAILURES = 5


def _refusal(exc: KafkaException, topic: str) -> K2Error:
    """The error for a message Kafka refused on ``topic``: fatal for the producer, or to retry."""
    error: KafkaError = exc.args[0]
    if error.fatal():
        return ProducerFatalError(f"the Kafka producer cannot go on: {error.str()}")
    return DeliveryFailedError(f"Kafka refused a message for {topic}: {error.str()}")


def flush_timeout_s(settings: KafkaSettings) -> float:
    """Long enough for every queued message to be acknowledged or to time out."""
    return settings.delivery_timeout_ms / 1000 + FLUSH_MARGIN_S


def producer_config(settings: KafkaSettings, linger_ms: float = LINGER_MS) -> dict[str, ConfigValue]:
    """The librdkafka settings of K2's producer: idempotent, fully acknowledged, batched, compressed.

    The partitioner is Java's (murmur2), so a symbol lands on the partition any Java client picks.
    ``linger_ms`` is how long a message may wait for its batch to fill.
    """
    return client_config(
        settings,
        CLIENT_ID,
        {
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": COMPRESSION,
            "linger.ms": linger_ms,
            "batch.size": BATCH_BYTES,
            "batch.num.messages": BATCH_MESSAGES,
            "queue.buffering.max.messages": QUEUE_MESSAGES,
            "delivery.timeout.ms": settings.delivery_timeout_ms,
            "partitioner": "murmur2_random",
        },
    )


@dataclass
class TopicStats:
    """What one topic's messages came to: acknowledged messages and value bytes, and failures."""

    messages: int = 0
    bytes: int = 0
    failed: int = 0
    #: produce-to-acknowledgement seconds of every :data:`LATENCY_SAMPLE`-th message, not yet reported.
    latencies: list[float] = field(default_factory=list)


@dataclass
class ProducerStats:
    """A producer's counts so far, per topic."""

    topics: dict[str, TopicStats] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        """Messages the broker acknowledged."""
        return sum(t.messages for t in self.topics.values())

    @property
    def bytes(self) -> int:
        """Value bytes the broker acknowledged."""
        return sum(t.bytes for t in self.topics.values())

    @property
    def failed(self) -> int:
        """Messages that could not be delivered."""
        return sum(t.failed for t in self.topics.values())


@dataclass(frozen=True, slots=True)
class _Route:
    """Where one venue's trades or quotes go, and how they are written there."""

    topic: str
    codec: RecordCodec
    schema_id: int
    on_delivery: Callable[[KafkaError | None, Message], None]


class MarketProducer:
    """Produces source batches of trades and quotes to their venue's topics; a context manager.

    ``linger_ms`` is how long a message may wait for its batch (a live feed wants little, a bulk
    load the default). With ``keep_failed`` it keeps every message that failed as it was encoded,
    for :meth:`resend_failed`. Leaving the ``with`` block flushes, and raises
    :class:`DeliveryFailedError` if any message failed. Leaving it on an exception delivers what
    it can within ``ABANDON_TIMEOUT_S``, discards the rest (the load failed anyway, and running it
    again is safe) and lets the exception through.

    Attributes:
        stats: what was acknowledged and what failed so far, per topic.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: K2Metrics | None = None,
        *,
        linger_ms: float = LINGER_MS,
        keep_failed: bool = False,
        breakers: Breakers | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        # Only the set-up of a route (topic creation, schema registration) goes through the
        # breakers; each produce call stays off them (librdkafka queues and retries it).
        self._breakers = breakers or Breakers(ResilienceSettings(), metrics)
        self._producer = Producer({**producer_config(settings, linger_ms), "error_cb": _on_client_error})
        self._registry = registry_client(settings)
        self._codecs: dict[DataType, RecordCodec] = {}
        self._routes: dict[tuple[str, DataType, str], _Route] = {}
        self._callbacks: dict[str, Callable[[KafkaError | None, Message], None]] = {}
        self._failures: list[str] = []
        self._keep_failed = keep_failed
        self._undelivered: list[tuple[str, bytes, bytes, Headers]] = []
        self._resent = 0
        self._reported: dict[str, TopicStats] = {}
        self._correlation = CorrelationIds()
        self._report_lock = threading.Lock()
        self.stats = ProducerStats()

    @property
    def run_id(self) -> str:
        """This producer's run: every batch's correlation id is ``<run_id>-<n>``."""
        return self._correlation.run

    def __enter__(self) -> Self:
        log.info("producer_started", run_id=self.run_id)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
            else:
                unsent = self._producer.flush(ABANDON_TIMEOUT_S)
                if unsent:
                    self._producer.purge()
                log.warning("producer_abandoned", unsent=unsent, failed=self.stats.failed)
        finally:
            self._producer.close()
            self._registry.close()

    def produce_batch(self, batch: SourceBatch) -> int:
        """Queue a batch of trades or quotes, each row one message on its venue's topic.

        Returns before the broker acknowledges anything; :meth:`flush` waits for that.

        Args:
            batch: rows of the trades or quotes table; rows of several venues go to their own topics.

        Returns:
            Messages queued.

        Raises:
            InvalidInputError: the batch is not trades or quotes, or its rows do not fit the record.
            DeliveryFailedError: earlier messages failed, or Kafka refused a message.
            ProducerFatalError: the producer hit a fatal error and cannot go on.
            KafkaUnavailableError: a topic could not be created or a schema registered for want of
                an answer.
            BreakerOpenError: Kafka's or the registry's breaker is open (a new route only).
            ConfigurationError: Kafka or the registry refused a topic or the schema.
        """
        self._raise_on_failures()
        data_type = DataType.of(batch.table.record)
        batch_id = self._correlation.next()
        headers: Headers = [(CORRELATION_HEADER, batch_id.encode())]
        queued = 0
        for (asset_class, exchange), rows in _by_venue(batch.rows):
            route = self._route(asset_class, data_type, exchange)
            for start in range(0, rows.num_rows, ENCODE_ROWS):
                queued += self._send(route, rows.slice(start, ENCODE_ROWS), headers)
        log.debug("producer_batch", correlation_id=batch_id, table=batch.table.name, messages=queued)
        return queued

    def flush(self, timeout_s: float | None = None) -> ProducerStats:
        """Wait until the broker has acknowledged, or failed, every queued message (at most
        ``timeout_s``, by default long enough for every message to time out).

        Returns:
            The producer's counts.

        Raises:
            DeliveryFailedError: some message failed (and was not sent again) or was still
                unacknowledged at the timeout.
        """
        if timeout_s is None:
            timeout_s = flush_timeout_s(self._settings)
        unsent = self._producer.flush(timeout_s)
        self._report()
        if unsent:
            raise DeliveryFailedError(f"{unsent} messages were still unacknowledged after {timeout_s:g} s")
        self._raise_on_failures()
        return self.stats

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve the delivery reports that are ready, or arrive within ``timeout_s``, and bring the
        metrics up to date with them. Safe beside the other methods, from another thread.
        """
        self._producer.poll(timeout_s)
        self._report()

    def resend_failed(self) -> int:
        """Queue again every message that failed since the last call (with ``keep_failed``), as
        it was encoded; a redelivered copy of a message the broker did take after all is
        harmless, the sink skips it by ``message_id``.

        Returns:
            Messages queued again.

        Raises:
            DeliveryFailedError: Kafka refused a message (it and the rest wait for the next call).
            ProducerFatalError: the producer cannot go on.
        """
        failed, self._undelivered = self._undelivered, []
        queued = 0
        try:
            for topic, key, value, headers in failed:
                self._produce(topic, key, value, self._callbacks[topic], headers)
                queued += 1
        except KafkaException as exc:
            self._undelivered[:0] = failed[queued:]  # the rest waits for the next call
            raise _refusal(exc, failed[queued][0]) from exc
        finally:
            self._resent += queued
        return queued

    def _raise_on_failures(self) -> None:
        outstanding = self.stats.failed - self._resent
        if outstanding:
            raise DeliveryFailedError(
                f"{outstanding} messages were not delivered, e.g. {'; '.join(self._failures)}"
            )

    def _report(self) -> None:
        """Add what was acknowledged and what failed since the last report to the metrics (the
        delivery callback only counts: a labelled metric per message would cost more than its send).
        """
        if self._metrics is None:
            return
        delivered, failed, sent = (
            self._metrics.produced_messages,
            self._metrics.produce_failures,
            self._metrics.produced_bytes,
        )
        with self._report_lock:
            for topic, counts in list(self.stats.topics.items()):
                told = self._reported.setdefault(topic, TopicStats())
                if counts.messages > told.messages:
                    delivered.labels(topic).inc(counts.messages - told.messages)
                    sent.labels(topic).inc(counts.bytes - told.bytes)
                if counts.failed > told.failed:
                    failed.labels(topic).inc(counts.failed - told.failed)
                told.messages, told.bytes, told.failed = counts.messages, counts.bytes, counts.failed
                latencies, counts.latencies = counts.latencies, []
                observe = self._metrics.produce_latency.labels(topic).observe
                for seconds in latencies:
                    observe(seconds)
            self._metrics.producer_queue.set(len(self._producer))

    def _send(self, route: _Route, rows: pa.Table, headers: Headers) -> int:
        values = route.codec.encode(rows, route.schema_id)
        keys = rows.column("symbol").to_pylist()
        produce = self._producer.produce
        topic, on_delivery = route.topic, route.on_delivery
        try:
            for key, value in zip(keys, values, strict=True):
                try:
                    produce(topic, value, key, on_delivery=on_delivery, headers=headers)
                except BufferError:
                    self._produce(topic, key, value, on_delivery, headers)
        except KafkaException as exc:
            raise _refusal(exc, topic) from exc
        self.poll(0)
        return len(values)

    def _produce(
        self,
        topic: str,
        key: str | bytes,
        value: bytes,
        on_delivery: Callable[[KafkaError | None, Message], None],
        headers: Headers,
    ) -> None:
        """Queue one message, serving delivery reports while the queue is full. Messages leave the
        queue when acknowledged or when they time out, so this ends within the delivery timeout.
        """
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=on_delivery, headers=headers)
            except BufferError:
                self.poll(QUEUE_FULL_WAIT_S)
                continue
            return

    def _route(self, asset_class: str, data_type: DataType, exchange: str) -> _Route:
        route = self._routes.get((asset_class, data_type, exchange))
        if route is not None:
            return route
        prefix = self._settings.topic_prefix
        topic = market_topic(asset_class, data_type, exchange, prefix)
        with self._breakers.guard(Dependency.KAFKA):
            ensure_topics(
                self._settings,
                {topic: self._settings.partitions, dlq_topic(exchange, prefix): dead_letters.PARTITIONS},
            )
        codec = self._codecs.setdefault(data_type, RecordCodec(data_type.record))
        subject = value_subject(topic)
        with self._breakers.guard(Dependency.SCHEMA_REGISTRY):
            schema_id = register(self._registry, subject, codec.schema)
        counts = self.stats.topics.setdefault(topic, TopicStats())
        if self._metrics is not None:  # zero until the first acknowledgement or failure
            self._metrics.produced_messages.labels(topic)
            self._metrics.produce_failures.labels(topic)
        on_delivery = self._callbacks.setdefault(topic, self._delivery_callback(counts))
        route = _Route(topic, codec, schema_id, on_delivery)
        self._routes[(asset_class, data_type, exchange)] = route
        log.info("topic_ready", topic=topic, subject=subject, schema_id=schema_id)
        return route

    def _delivery_callback(self, counts: TopicStats) -> Callable[[KafkaError | None, Message], None]:
        failures = self._failures

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is None:
                counts.messages += 1
                counts.bytes += len(message)
                if counts.messages % LATENCY_SAMPLE == 0:
                    counts.latencies.append(message.latency() or 0.0)
                return
            counts.failed += 1
            if len(failures) < QUOTED_FAILURES:
                failures.append(f"{message.topic()}: {error.str()}")
            if self._keep_failed:
                headers = message.headers() or []
                self._undelivered.append(
                    (
                        message.topic() or "",
                        message.key() or b"",
                        message.value() or b"",
                        list(headers.items()) if isinstance(headers, dict) else headers,
                    )
                )

        return on_delivery


def _on_client_error(error: KafkaError) -> None:
    """Log librdkafka's client-level errors (a broker down, a fatal idempotence error); librdkafka
    retries the transient ones itself, and message failures reach the delivery callback.
    """
    log.warning("kafka_client_error", error=error.str(), fatal=error.fatal())


def _by_venue(rows: pa.Table) -> Iterator[tuple[tuple[str, str], pa.Table]]:
    """Split rows by (asset class, exchange), keeping row order within each."""
    if rows.num_rows == 0:
        return
    asset_classes, exchanges = rows.column("asset_class"), rows.column("exchange")
    first = (asset_classes[0].as_py(), exchanges[0].as_py())
    if pc.all(pc.equal(asset_classes, first[0])).as_py() and pc.all(pc.equal(exchanges, first[1])).as_py():
        yield first, rows  # one venue, the usual case: no grouping
        return
    venues = rows.select(["asset_class", "exchange"]).group_by(["asset_class", "exchange"]).aggregate([])
    pairs = zip(venues["asset_class"].to_pylist(), venues["exchange"].to_pylist(), strict=True)
    for asset_class, exchange in pairs:
        mask = pc.and_(pc.equal(rows["asset_class"], asset_class), pc.equal(rows["exchange"], exchange))
        yield (asset_class, exchange), rows.filter(mask)
