"""The live feed while its broker is away longer than the producer's delivery timeout: what Kafka
failed to take is sent again, and every trade and quote reaches its topic.

The broker is stopped with SIGKILL, so the test runs on ``private_platform`` (its own ports and
data), never on the shared platform.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from k2.ingest.live.binance.feed import BinanceFeed
from k2.ingest.live.binance.protocol import EXCHANGE
from k2.ingest.live.binance.server import Behaviour, BinanceServer
from k2.ingest.live.binance.tapes import SyntheticTape
from k2.ingest.live.output import KafkaFeedOutput
from k2.ingest.live.status import FeedStats
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.schema_registry import WriterSchemas
from k2.kafka.topics import DataType, market_topic
from k2.obs.metrics import K2Metrics
from k2.platform.kafka import Kafka
from k2.platform.process import ServerProcess
from k2.settings import K2Settings

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
#: Messages the server sends, and how fast: the stream lasts ~10 s, the broker is away in its middle.
MESSAGES = 1_500
RATE = 150.0
#: The producer gives a message up after this long; the broker stays away longer.
DELIVERY_TIMEOUT_MS = 2_000
OUTAGE_S = 5.0
DEADLINE_S = 120.0


def _values(settings: K2Settings, data_type: DataType) -> list[bytes]:
    """Every message value in the feed's topic of ``data_type``, from the start to the end."""
    topic = market_topic("crypto", data_type, "BINANCE", settings.kafka.topic_prefix)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "k2-test-outage",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(settings.kafka.partitions)
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while sum(ends.values()) > len(values) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                value = message.value()
                if message.error() is None and value is not None:
                    values.append(value)
        return values
    finally:
        consumer.close()


def _message_ids(settings: K2Settings, data_type: DataType, values: list[bytes]) -> list[str]:
    schemas = WriterSchemas(settings.kafka)
    try:
        decoded = RecordCodec(data_type.record).decode(values, schemas)
    finally:
        schemas.close()
    assert decoded.errors == []
    ids: list[str] = decoded.rows.column("message_id").to_pylist()
    return ids


def test_feed_sends_again_what_a_broker_outage_failed(stream_settings: K2Settings) -> None:
    """Kafka killed for longer than the delivery timeout while the feed streams, then started again:
    the messages that timed out are queued again (the feed pauses, drops nothing), and each of the
    server's trades and quotes is in its topic (a copy the broker had taken after all may repeat;
    the sink skips it by ``message_id``)."""
    kafka = stream_settings.kafka.model_copy(update={"delivery_timeout_ms": DELIVERY_TIMEOUT_MS})
    settings = stream_settings.model_copy(update={"kafka": kafka})
    metrics = K2Metrics(CollectorRegistry())
    broker = Kafka(settings)
    with KafkaFeedOutput(
        settings.kafka, metrics, exchange=EXCHANGE, linger_ms=settings.binance.producer_linger_ms
    ) as sink:

        async def main() -> FeedStats:
            tape = SyntheticTape(SYMBOLS, total=MESSAGES, rate=RATE)
            async with BinanceServer(tape, Behaviour(ping_interval=None, ping_timeout=None)) as server:
                binance = settings.binance.model_copy(
                    update={
                        "ws_url": server.ws_url,
                        "rest_url": server.rest_url,
                        "symbols": SYMBOLS,
                        "reconnect_backoff_base_s": 0.2,
                        "reconnect_backoff_max_s": 1.0,
                        "silence_timeout_s": None,
                    }
                )
                feed = BinanceFeed(binance, sink, metrics)
                stop = asyncio.Event()
                task = asyncio.create_task(feed.run(stop))
                deadline = time.monotonic() + DEADLINE_S
                while feed.stats.produced < MESSAGES // 5 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                process = ServerProcess("kafka", settings.platform_data / "kafka")
                try:
                    await asyncio.to_thread(process.stop, timeout_s=15.0, sig=signal.SIGKILL)
                    await asyncio.sleep(OUTAGE_S)
                finally:
                    await asyncio.to_thread(broker.start)
                while not (server.finished.is_set() and feed.stats.produced >= MESSAGES):
                    if time.monotonic() > deadline or task.done():
                        break
                    await asyncio.sleep(0.05)
                stop.set()
                return await asyncio.wait_for(task, DEADLINE_S)

        stats = asyncio.run(main())
    assert stats.produced == MESSAGES
    assert sink.resent > 0, "nothing timed out: the outage was too short to test anything"

    trade_ids = _message_ids(settings, DataType.TRADES, _values(settings, DataType.TRADES))
    quote_ids = _message_ids(settings, DataType.QUOTES, _values(settings, DataType.QUOTES))
    assert len(set(trade_ids)) == stats.trades
    assert len(set(quote_ids)) == stats.quotes
    assert stats.trades + stats.quotes == MESSAGES
