"""Where a live feed's rows go: the :class:`FeedSink` protocol and its Kafka implementation.

:class:`KafkaFeedSink` produces trades and quotes through :class:`~k2.ingest.producer.MarketProducer`
(idempotent, ``acks=all``, Avro under the registry) and unreadable frames, whole, to the venue's
dead-letter topic with the reason in headers. A message Kafka did not take within the delivery
timeout (a broker away that long) is kept as encoded and queued again, and the batch at hand is
refused with a :class:`~k2.errors.RetryableError` so the feed offers it again after a pause: the
feed never stops for a broker outage and loses nothing to one.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol, Self

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from k2.ingest.feed_resume import last_trade_ids
from k2.ingest.producer import (
    ADMIN_TIMEOUT_S,
    DLQ_PARTITIONS,
    LINGER_MS,
    QUEUE_FULL_WAIT_S,
    DeliveryFailedError,
    KafkaUnavailableError,
    MarketProducer,
)
from k2.ingest.sources.base import SourceBatch
from k2.obs.metrics import K2Metrics
from k2.schemas.topics import dlq_topic
from k2.settings import KafkaSettings

log = structlog.get_logger(__name__)

#: Headers of a feed dead letter.
ERROR_HEADER = "k2.error"
REASON_HEADER = "k2.error.reason"
SOURCE_HEADER = "k2.source"
#: How long a dead-letter flush may take.
DLQ_FLUSH_TIMEOUT_S = 30.0
#: Flushes, each queueing again what failed before, before the sink gives up at shutdown.
FLUSH_ATTEMPTS = 3
#: Longest the delivery-report thread waits for a report before it looks whether to stop.
REPORTS_POLL_S = 0.1


class FeedSink(Protocol):
    """Where a feed's rows and dead letters go; called from one worker thread only."""

    def produce(self, batch: SourceBatch) -> None:
        """Queue a batch of trades or quotes for delivery.

        Raises:
            RetryableError: the batch was not taken; the feed offers it again later.
        """
        ...

    def dead_letter(self, frame: bytes, reason: str, detail: str) -> None:
        """Keep an unreadable frame with why it could not be read."""
        ...

    def flush(self) -> None:
        """Wait until everything queued is delivered.

        Raises:
            RetryableError: something was not delivered.
        """
        ...

    def last_trade_ids(self, symbols: list[str]) -> dict[str, int]:
        """The last trade id of each of ``symbols`` this sink already holds from an earlier run,
        where it knows one: where a starting feed resumes its gap checks.
        """
        ...


class KafkaFeedSink:
    """A :class:`FeedSink` on Kafka; a context manager that closes its producers.

    A thread serves the market producer's delivery reports as they arrive, so what was delivered
    is known (and counted) at once, not when the next batch comes.

    Args:
        settings: the cluster and registry.
        metrics: where the producer counts.
        exchange: the venue, which names the dead-letter topic.
        linger_ms: how long a message may wait for its producer batch to fill.

    Attributes:
        resent: messages Kafka failed to take that were queued again.
        dead_letters: dead letters Kafka acknowledged.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: K2Metrics | None = None,
        *,
        exchange: str = "BINANCE",
        linger_ms: float = LINGER_MS,
    ) -> None:
        self._settings = settings
        self._producer = self._market_producer(settings, metrics, linger_ms)
        self._dlq_topic = dlq_topic(exchange, settings.topic_prefix)
        self._dlq: Producer | None = None
        self._dlq_failures: list[str] = []
        self._exchange = exchange
        self._source = f"feed:{exchange.lower()}"
        self._closing = threading.Event()
        self._reports = threading.Thread(target=self._serve_reports, name="k2-feed-reports", daemon=True)
        self._reports.start()
        self.resent = 0
        self.dead_letters = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self._reports.join()
        try:
            self._producer.__exit__(exc_type, exc, tb)
        finally:
            if self._dlq is not None:
                self._dlq.flush(DLQ_FLUSH_TIMEOUT_S)

    def produce(self, batch: SourceBatch) -> None:
        """Queue the batch on the market producer.

        Raises:
            DeliveryFailedError: earlier messages failed; they are queued again, and the batch
                is to be offered again.
            ProducerFatalError: the producer cannot go on (the feed stops; a restarted feed
                finds the trades it missed as a gap and backfills them).
            KafkaUnavailableError: a topic or schema could not be set up for want of an answer.
        """
        try:
            self._producer.produce_batch(batch)
        except DeliveryFailedError:
            self._resend()
            raise

    def flush(self) -> None:
        """Wait until the market producer and the dead letters are delivered, queueing again what
        failed up to ``FLUSH_ATTEMPTS`` times.

        Raises:
            DeliveryFailedError: something was still not delivered.
        """
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                self._producer.flush()
                break
            except DeliveryFailedError:
                if attempt == FLUSH_ATTEMPTS:
                    raise
                self._resend()
        if self._dlq is not None:
            unsent = self._dlq.flush(DLQ_FLUSH_TIMEOUT_S)
            if unsent or self._dlq_failures:
                failures, self._dlq_failures = self._dlq_failures, []
                raise DeliveryFailedError(f"dead letters not stored: {unsent} pending, e.g. {failures[:3]}")

    def last_trade_ids(self, symbols: list[str]) -> dict[str, int]:
        """The largest trade id of each of ``symbols`` among the last trades in the venue's topic
        (:func:`~k2.ingest.feed_resume.last_trade_ids`).
        """
        return last_trade_ids(self._settings, self._exchange, symbols)

    def _market_producer(
        self, settings: KafkaSettings, metrics: K2Metrics | None, linger_ms: float
    ) -> MarketProducer:
        """The producer of trades and quotes, keeping what fails (a subclass may watch it closer)."""
        return MarketProducer(settings, metrics, linger_ms=linger_ms, keep_failed=True)

    def _resend(self) -> None:
        """Queue again what Kafka failed to take (it timed out: the broker was away that long)."""
        resent = self._producer.resend_failed()
        self.resent += resent
        log.warning("feed_messages_resent", resent=resent, total_resent=self.resent)

    def _serve_reports(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(REPORTS_POLL_S)

    def dead_letter(self, frame: bytes, reason: str, detail: str) -> None:
        """Queue ``frame`` on the dead-letter topic, creating the topic the first time.

        Raises:
            KafkaUnavailableError: the topic could not be created for want of an answer.
        """
        producer = self._dead_letter_producer()
        headers: list[tuple[str, str | bytes | None]] = [
            (ERROR_HEADER, detail.encode()),
            (REASON_HEADER, reason.encode()),
            (SOURCE_HEADER, self._source.encode()),
        ]
        while True:
            try:
                producer.produce(
                    self._dlq_topic,
                    value=frame,
                    key=reason.encode(),
                    headers=headers,
                    on_delivery=self._dl_done,
                )
                break
            except BufferError:
                producer.poll(QUEUE_FULL_WAIT_S)
        producer.poll(0)

    def _dead_letter_producer(self) -> Producer:
        if self._dlq is None:
            self._ensure_dlq_topic()
            self._dlq = Producer(
                {
                    "bootstrap.servers": self._settings.bootstrap_servers,
                    "client.id": "k2-feed-dlq",
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                }
            )
        return self._dlq

    def _ensure_dlq_topic(self) -> None:
        admin = AdminClient({"bootstrap.servers": self._settings.bootstrap_servers})
        try:
            if self._dlq_topic in admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics:
                return
            topic = NewTopic(
                self._dlq_topic,
                num_partitions=DLQ_PARTITIONS,
                replication_factor=self._settings.replication_factor,
            )
            admin.create_topics([topic], operation_timeout=ADMIN_TIMEOUT_S)[self._dlq_topic].result()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailableError(f"cannot create topic {self._dlq_topic}: {error.str()}") from exc

    def _dl_done(self, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            self.dead_letters += 1
        else:
            self._dlq_failures.append(error.str())


class CountingSink:
    """A :class:`FeedSink` that only counts, for dry runs and offline demos without Kafka."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.dead_letters = 0

    def produce(self, batch: SourceBatch) -> None:
        """Count the batch's rows under its table."""
        self.rows[batch.table.name] = self.rows.get(batch.table.name, 0) + batch.rows.num_rows

    def dead_letter(self, frame: bytes, reason: str, detail: str) -> None:
        """Count the frame."""
        self.dead_letters += 1

    def flush(self) -> None:
        """Nothing is queued."""

    def last_trade_ids(self, symbols: list[str]) -> dict[str, int]:
        """Nothing is kept."""
        return {}
