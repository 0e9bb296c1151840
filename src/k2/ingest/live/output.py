"""Where a live feed's rows go: the :class:`FeedOutput` protocol and its Kafka implementation.

:class:`KafkaFeedOutput` produces trades and quotes through :class:`~k2.ingest.producer.MarketProducer`
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

from k2.ingest.errors import DeliveryFailedError
from k2.ingest.live.resume import last_trade_ids
from k2.ingest.producer import LINGER_MS, MarketProducer
from k2.ingest.sources.base import SourceBatch
from k2.kafka.dead_letters import DeadLetterWriter, Origin
from k2.kafka.errors import DeadLetterError
from k2.kafka.topics import dlq_topic
from k2.obs.metrics import K2Metrics
from k2.settings import KafkaSettings

log = structlog.get_logger(__name__)

#: Flushes, each queueing again what failed before, before the output gives up at shutdown.
FLUSH_ATTEMPTS = 3
#: Longest the delivery-report thread waits for a report before it looks whether to stop.
REPORTS_POLL_S = 0.1


class FeedOutput(Protocol):
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
        """The last trade id of each of ``symbols`` this output already holds from an earlier run,
        where it knows one: where a starting feed resumes its gap checks.
        """
        ...


class KafkaFeedOutput:
    """A :class:`FeedOutput` on Kafka; a context manager that closes its producers.

    A thread serves the market producer's delivery reports as they arrive, so what was delivered
    is known (and counted) at once, not when the next batch comes.

    Args:
        settings: the cluster and registry.
        metrics: where the producer counts.
        exchange: the venue, which names the dead-letter topic.
        linger_ms: how long a message may wait for its producer batch to fill.

    Attributes:
        resent: messages Kafka failed to take that were queued again.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: K2Metrics | None = None,
        *,
        exchange: str,
        linger_ms: float = LINGER_MS,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._producer = self._market_producer(settings, metrics, linger_ms)
        self._dlq_topic = dlq_topic(exchange, settings.topic_prefix)
        self._dead_letters: DeadLetterWriter | None = None
        self._exchange = exchange
        self._origin = Origin(f"feed:{exchange.lower()}")
        if metrics is not None:
            metrics.dead_letters.labels(self._dlq_topic, "feed")  # zero until the first
        self._closing = threading.Event()
        self._reports = threading.Thread(target=self._serve_reports, name="k2-feed-reports", daemon=True)
        self._reports.start()
        self.resent = 0

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
            if self._dead_letters is not None:
                try:
                    self._dead_letters.flush()
                except DeadLetterError as error:
                    log.warning("feed_dead_letters_not_stored", error=str(error))

    @property
    def dead_letters(self) -> int:
        """Dead letters Kafka acknowledged."""
        return self._dead_letters.sent if self._dead_letters is not None else 0

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
            DeadLetterError: a dead letter was not stored.
        """
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                self._producer.flush()
                break
            except DeliveryFailedError:
                if attempt == FLUSH_ATTEMPTS:
                    raise
                self._resend()
        if self._dead_letters is not None:
            self._dead_letters.flush()

    def last_trade_ids(self, symbols: list[str]) -> dict[str, int]:
        """The largest trade id of each of ``symbols`` among the last trades in the venue's topic
        (:func:`~k2.ingest.live.resume.last_trade_ids`).
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
        """Queue ``frame`` on the venue's dead-letter topic (created the first time), keyed by
        ``reason``.

        Raises:
            KafkaUnavailableError: the topic could not be created for want of an answer.
        """
        if self._dead_letters is None:
            self._dead_letters = DeadLetterWriter(self._settings, "k2-feed-dlq")
        self._dead_letters.send(
            self._dlq_topic, frame, reason.encode(), reason=reason, error=detail, origin=self._origin
        )
        if self._metrics is not None:
            self._metrics.dead_letters.labels(self._dlq_topic, "feed").inc()


class CountingOutput:
    """A :class:`FeedOutput` that only counts, for dry runs and offline demos without Kafka."""

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
