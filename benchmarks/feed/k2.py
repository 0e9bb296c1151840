"""K2's side of the live-feed benchmark: :class:`~k2.ingest.live.binance.feed.BinanceFeed` run
against the frame server until a count of messages was produced, and a sink that notes when each
was acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from confluent_kafka import KafkaError, Message

from benchmarks.common import BenchmarkError
from benchmarks.feed.server import SYMBOLS, Cores, frame_server
from benchmarks.stream.throughput import Rate
from k2.ingest.live.binance.feed import BinanceFeed
from k2.ingest.live.binance.protocol import EXCHANGE
from k2.ingest.live.output import FeedOutput, KafkaFeedOutput
from k2.ingest.producer import MarketProducer, TopicStats
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.topics import DataType
from k2.obs.metrics import K2Metrics
from k2.settings import BinanceSettings, K2Settings, KafkaSettings

#: Longest a run may take before the benchmark gives up.
TIMEOUT_S = 300.0


class _RecordingCodec(RecordCodec):
    """Notes each value's receive time (``ingestion_timestamp``, µs) as it encodes it."""

    def __init__(self, data_type: DataType, received: dict[bytes, int]) -> None:
        super().__init__(data_type.record)
        self._received = received

    def encode(self, rows: pa.Table, schema_id: int) -> list[bytes]:
        values = super().encode(rows, schema_id)
        times = rows.column("ingestion_timestamp").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        self._received.update(zip(values, times.to_pylist(), strict=True))
        return values


class _TimedProducer(MarketProducer):
    """``MarketProducer`` that notes, in every successful delivery callback, how long ago the
    message was received (floats in a list: nothing the garbage collector has to walk).
    """

    def __init__(self, settings: KafkaSettings, metrics: K2Metrics | None, linger_ms: float) -> None:
        super().__init__(settings, metrics, linger_ms=linger_ms, keep_failed=True)
        self.received: dict[bytes, int] = {}
        self.latencies_ms: list[float] = []
        for data_type in DataType:
            self._codecs[data_type] = _RecordingCodec(data_type, self.received)

    def _delivery_callback(self, counts: TopicStats) -> Callable[[KafkaError | None, Message], None]:
        inner = super()._delivery_callback(counts)
        received, latencies = self.received, self.latencies_ms

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            inner(error, message)
            at_us = received.pop(message.value() or b"", None)
            if error is None and at_us is not None:
                latencies.append((time.time_ns() / 1000 - at_us) / 1000)

        return on_delivery


class TimedSink(KafkaFeedOutput):
    """K2's Kafka sink, noting each message's receive time and when it was acknowledged."""

    def _market_producer(
        self, settings: KafkaSettings, metrics: K2Metrics | None, linger_ms: float
    ) -> MarketProducer:
        self.timed = _TimedProducer(settings, metrics, linger_ms)
        return self.timed

    def latencies_ms(self) -> list[float]:
        """Receive → delivery callback of every message, in the order they were acknowledged."""
        return self.timed.latencies_ms


def binance_settings(base: K2Settings, url: str, **changes: float) -> BinanceSettings:
    """The feed's settings, pointed at the frame server at ``url``, with ``changes``."""
    rest = url.replace("ws://", "http://")
    return base.binance.model_copy(update={"ws_url": url, "rest_url": rest, "symbols": SYMBOLS, **changes})


async def run_feed(binance: BinanceSettings, sink: FeedOutput, metrics: K2Metrics, count: int) -> Rate:
    """Run the feed until ``count`` messages were received, produced and flushed; first → last."""
    feed = BinanceFeed(binance, sink, metrics)
    stop = asyncio.Event()

    async def stop_after_count() -> float:
        deadline = time.monotonic() + TIMEOUT_S
        while feed.stats.messages == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        first = time.perf_counter()
        while feed.stats.messages < count and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        stop.set()
        return first

    watcher = asyncio.create_task(stop_after_count())
    try:
        stats = await feed.run(stop)
    finally:
        stop.set()
    ended = time.perf_counter()
    first = await watcher
    if stats.produced < count or stats.malformed:
        raise BenchmarkError(f"the feed produced {stats.produced} of {count} ({stats.malformed} malformed)")
    return Rate(stats.produced, ended - first)


def k2_latency(
    base: K2Settings,
    kafka: KafkaSettings,
    metrics: K2Metrics,
    path: Path,
    *,
    cores: Cores,
    rate: float,
    count: int,
    linger_ms: float,
) -> list[float]:
    """The feed at ``rate`` messages a second with the producer's ``linger.ms`` at ``linger_ms``:
    receive → delivery callback, in ms, in order.
    """
    with (
        frame_server(path, rate, cores.server) as url,
        TimedSink(kafka, metrics, exchange=EXCHANGE, linger_ms=linger_ms) as sink,
    ):
        asyncio.run(run_feed(binance_settings(base, url), sink, metrics, count))
        return sink.latencies_ms()
