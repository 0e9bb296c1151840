"""Where a live feed left off: the last trade id of each symbol already in its Kafka topic.

Trades are keyed by symbol, so each symbol's trades sit in order on one partition and the newest
of them carry its last trade id (a backfilled trade may come later with a smaller id: the largest
wins). A feed that starts reads back the end of each partition of its trades topic and seeds its
gap tracker with what it finds, so the trades Binance sent while the feed was not running are a gap
like one across a reconnect: counted, listed and backfilled.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import structlog
from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.domain.events import AssetClass
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.partitions import Span, read_spans, reader, watermarks
from k2.kafka.schema_registry import WriterSchemas
from k2.kafka.topics import DataType, market_topic
from k2.settings import KafkaSettings

log = structlog.get_logger(__name__)

#: Messages read back from the end of each partition; a symbol not among them starts afresh.
RESUME_TAIL_MESSAGES = 10_000
#: Longest the read may take before the feed starts without it.
RESUME_TIMEOUT_S = 15.0


def last_trade_ids(settings: KafkaSettings, exchange: str, symbols: list[str]) -> dict[str, int]:
    """The largest trade id of each of ``symbols`` among the last trades in ``exchange``'s crypto
    trades topic; symbols with none there (or a topic not there yet) are left out.

    When Kafka or the registry does not answer in time, the feed starts without it (and says so):
    a gap across the restart then goes unseen, as it would on a first start.
    """
    topic = market_topic(AssetClass.CRYPTO.value, DataType.TRADES, exchange, settings.topic_prefix)
    try:
        values = _tail(settings, topic)
        if not values:
            return {}
        schemas = WriterSchemas(settings)
        try:
            rows = RecordCodec(DataType.TRADES.record).decode(values, schemas).rows
        finally:
            schemas.close()
    except (KafkaException, SchemaRegistryError, OSError, TimeoutError) as error:
        log.warning("feed_resume_unavailable", topic=topic, error=str(error))
        return {}
    mine = pc.and_(
        pc.equal(rows["exchange"], exchange), pc.is_in(rows["symbol"], pa.array(symbols, pa.string()))
    )
    last = rows.filter(mine).group_by("symbol").aggregate([("source_sequence", "max")])
    found = dict(zip(last["symbol"].to_pylist(), last["source_sequence_max"].to_pylist(), strict=True))
    log.info("feed_resume", topic=topic, messages=len(values), last_trade_ids=found)
    return {symbol: int(trade_id) for symbol, trade_id in found.items() if trade_id is not None}


def _tail(settings: KafkaSettings, topic: str) -> list[bytes | None]:
    """The last :data:`RESUME_TAIL_MESSAGES` values of each partition of ``topic``."""
    consumer = reader(settings, "k2-feed-resume")
    try:
        metadata = consumer.list_topics(topic, timeout=RESUME_TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []  # no such topic yet: a first start
        spans = {}
        for partition in metadata.partitions:
            held = watermarks(consumer, topic, partition, RESUME_TIMEOUT_S)
            spans[(topic, partition)] = Span(max(held.start, held.end - RESUME_TAIL_MESSAGES), held.end)
        return read_spans(consumer, spans, RESUME_TIMEOUT_S)
    finally:
        consumer.close()
