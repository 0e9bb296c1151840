"""The live-feed benchmark's limit: the same frames through websockets, orjson and a bare
confluent_kafka ``Producer`` with K2's producer settings, nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from confluent_kafka import KafkaError, Message, Producer
from websockets.asyncio.client import connect

from benchmarks.common import BenchmarkError
from benchmarks.feed.server import SYMBOLS, Cores, frame_server
from benchmarks.stream.throughput import Rate
from k2.ingest.live.binance.protocol import combined_stream_url
from k2.ingest.producer import QUEUE_FULL_WAIT_S, flush_timeout_s, producer_config
from k2.settings import KafkaSettings

#: The client serves delivery reports this often (messages) when not measuring latency.
POLL_EVERY = 1_000

Callback = Callable[[KafkaError | None, Message], None]


def bare_producer(kafka: KafkaSettings, linger_ms: float) -> Producer:
    """A confluent_kafka producer with K2's settings and ``linger_ms``."""
    return Producer(producer_config(kafka, linger_ms))


def produce(
    producer: Producer, topic: str, value: str | bytes, key: str, on_delivery: Callback | None
) -> None:
    """Queue one message, serving delivery reports while the queue is full."""
    while True:
        try:
            if on_delivery is None:
                producer.produce(topic, value, key)
            else:
                producer.produce(topic, value, key, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(QUEUE_FULL_WAIT_S)


def flush(producer: Producer, kafka: KafkaSettings) -> None:
    """Wait until every message is acknowledged."""
    if producer.flush(flush_timeout_s(kafka)):
        raise BenchmarkError("the raw producer left messages unsent")


async def raw_client(
    url: str,
    count: int,
    kafka: KafkaSettings,
    producer: Producer | None,
    topic: str,
    *,
    latencies: list[float] | None = None,
) -> Rate:
    """Receive ``count`` frames; decode each with orjson and produce it as is (``producer``), or
    only receive them (no producer). With ``latencies``: receive → delivery callback, in ms,
    serving delivery reports after every message.
    """
    loads = orjson.loads
    received = 0
    first = 0.0
    async with connect(combined_stream_url(url, SYMBOLS), max_size=None) as ws:
        async for frame in ws:
            if not received:
                first = time.perf_counter()
            received += 1
            if producer is not None:
                at_ns = time.time_ns()
                key = loads(frame)["data"]["s"]
                if latencies is None:
                    produce(producer, topic, frame, key, None)
                    if received % POLL_EVERY == 0:
                        producer.poll(0)
                else:
                    produce(producer, topic, frame, key, _latency_callback(latencies, at_ns))
                    producer.poll(0)
            if received >= count:
                break
    if producer is not None:
        flush(producer, kafka)
    return Rate(received, time.perf_counter() - first)


def raw_latency(
    kafka: KafkaSettings, path: Path, topic: str, *, cores: Cores, rate: float, count: int, linger_ms: float
) -> list[float]:
    """The limit at ``rate`` messages a second: receive → delivery callback, in ms, in order."""
    found: list[float] = []
    with frame_server(path, rate, cores.server) as url:
        asyncio.run(raw_client(url, count, kafka, bare_producer(kafka, linger_ms), topic, latencies=found))
    return found


def _latency_callback(latencies: list[float], at_ns: int) -> Callback:
    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            latencies.append((time.time_ns() - at_ns) / 1e6)

    return on_delivery
