"""The live-feed benchmark in memory, step by step on one core: decoding, normalising, batching and
producing the same frames, K2's way and the bare way, each step timed alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry

from benchmarks.feed.limit import POLL_EVERY, bare_producer, flush, produce
from benchmarks.stream.throughput import Rate
from k2.ingest.live.binance.protocol import EXCHANGE, MarketMessage, StreamKind, parse_frame, to_table
from k2.ingest.live.output import KafkaFeedOutput
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import QUOTES, TRADES
from k2.obs.metrics import K2Metrics
from k2.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Steps:
    """How fast each step went."""

    decode: Rate
    normalise: Rate
    batch: Rate
    produce_k2: Rate
    produce_raw: Rate
    limit: Rate

    @property
    def k2(self) -> Rate:
        """``parse_frame`` + ``to_table`` + ``KafkaFeedOutput``, one after the other."""
        seconds = self.normalise.seconds + self.batch.seconds + self.produce_k2.seconds
        return Rate(self.normalise.messages, seconds)


def _timed(call: Callable[[], int]) -> Rate:
    started = time.perf_counter()
    count = call()
    return Rate(count, time.perf_counter() - started)


def in_memory(
    kafka: KafkaSettings, frames: list[bytes], raw_topic: str, batch_rows: int, linger_ms: float
) -> Steps:
    """Time each step over ``frames``, K2's producer and the bare one with ``linger_ms``."""
    received = time.time_ns() // 1000
    loads = orjson.loads

    def decode() -> int:
        for frame in frames:
            loads(frame)
        return len(frames)

    messages: list[MarketMessage] = []

    def normalise() -> int:
        for frame in frames:
            message = parse_frame(frame, received)
            if isinstance(message, MarketMessage):
                messages.append(message)
        return len(messages)

    batches: list[SourceBatch] = []

    def batch() -> int:
        for start in range(0, len(messages), batch_rows):
            chunk = messages[start : start + batch_rows]
            trades = [m for m in chunk if m.kind is StreamKind.TRADE]
            quotes = [m for m in chunk if m.kind is StreamKind.QUOTE]
            batches.append(SourceBatch(TRADES, to_table(StreamKind.TRADE, trades), len(trades), 0))
            batches.append(SourceBatch(QUOTES, to_table(StreamKind.QUOTE, quotes), len(quotes), 0))
        return len(messages)

    sink = KafkaFeedOutput(kafka, K2Metrics(CollectorRegistry()), exchange=EXCHANGE, linger_ms=linger_ms)

    def produce_k2() -> int:
        for b in batches:
            sink.produce(b)
        sink.flush()
        return sum(b.rows.num_rows for b in batches)

    keys = [loads(frame)["data"]["s"] for frame in frames]
    producer = bare_producer(kafka, linger_ms)

    def produce_raw() -> int:
        for n, (frame, key) in enumerate(zip(frames, keys, strict=True), start=1):
            produce(producer, raw_topic, frame, key, None)
            if n % POLL_EVERY == 0:
                producer.poll(0)
        flush(producer, kafka)
        return len(frames)

    def limit() -> int:
        for n, frame in enumerate(frames, start=1):
            produce(producer, raw_topic, frame, loads(frame)["data"]["s"], None)
            if n % POLL_EVERY == 0:
                producer.poll(0)
        flush(producer, kafka)
        return len(frames)

    steps = [_timed(step) for step in (decode, normalise, batch)]
    with sink:
        # Warm up: topics, schema registration, the idempotent producer id, connections.
        for b in batches[:2]:
            sink.produce(SourceBatch(b.table, b.rows.slice(0, 1), 1, 0))
        sink.flush()
        steps.append(_timed(produce_k2))
    produce(producer, raw_topic, frames[0], keys[0], None)
    flush(producer, kafka)
    steps += [_timed(produce_raw), _timed(limit)]
    return Steps(*steps)
