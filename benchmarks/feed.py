"""Benchmark 6: the live Binance feed (targets P6), fed by the local Binance-protocol server.

K2's feed (:class:`~k2.ingest.feed.BinanceFeed`: WebSocket read, orjson decode, normalise to v2
rows with :mod:`k2.ingest.sources.binance`, Arrow batches, :class:`~k2.ingest.feed_sink.KafkaFeedSink`
→ ``MarketProducer``) runs pinned to one core; the server
(:class:`~k2.testing.binance_server.BinanceServer`, replaying pre-built combined-stream frames)
runs in a child process pinned to the other, as fast as it can send or at a fixed pace. Beside
it, in the same run and on the same frames, the limit: orjson decode + a bare confluent_kafka
``Producer`` with K2's producer settings, over the same socket client and in memory.

1. throughput, end to end (first frame received → last message acknowledged) and step by step;
2. latency at a steady pace: a message's receive time (the feed's ``ingestion_timestamp``; the
   raw client's clock on receipt) → its delivery callback.

The run works under a topic prefix of its own and removes its topics and registry subjects.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect

from benchmarks import stream_throughput as throughput
from benchmarks.common import DATA_DIR, Sizes, log, percentile
from benchmarks.ingest import BenchmarkError
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.stream_throughput import Rate
from k2.ingest.feed import BinanceFeed
from k2.ingest.feed_sink import CountingSink, FeedSink, KafkaFeedSink
from k2.ingest.producer import (
    FLUSH_TIMEOUT_S,
    LINGER_MS,
    QUEUE_FULL_WAIT_S,
    MarketProducer,
    TopicStats,
    producer_config,
)
from k2.ingest.sources.base import SourceBatch
from k2.ingest.sources.binance import MarketMessage, StreamKind, combined_stream_url, parse_frame, to_table
from k2.lake.tables import QUOTES, TRADES
from k2.obs.logging import configure_logging
from k2.obs.metrics import K2Metrics
from k2.platform import stack
from k2.schemas.codec import RecordCodec
from k2.schemas.topics import DataType
from k2.settings import BinanceSettings, K2Settings, KafkaSettings, LogLevel, ObsSettings, Profile
from k2.testing.binance_server import Behaviour, BinanceServer, SyntheticTape, TapeEvent

TITLE = "Live feed"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
#: Frames of each throughput run.
MESSAGES = {"full": 300_000, "quick": 30_000}
#: The steady pace of the latency runs, and how long each lasts; the first second is warm-up.
LATENCY_RATE = 10_000
LATENCY_SECONDS = {"full": 20.0, "quick": 5.0}
WARMUP_S = 1.0
THROUGHPUT_TARGET = Target(100_000, Unit.MESSAGES_PER_SECOND)  # P6
LATENCY_TARGET = Target(5.0, Unit.MILLISECONDS)  # P6
#: A what-if latency run: both producers' ``linger.ms`` and the feed's ``batch_linger_ms`` at this.
WHAT_IF_LINGER_MS = 1
#: Longest a run may take before the benchmark gives up.
TIMEOUT_S = 300.0
#: The raw client serves delivery reports this often (messages) when not measuring latency.
RAW_POLL_EVERY = 1_000


# --- the server, in a child process ---------------------------------------------------------


class _FrameTape:
    """Pre-built frames, sent verbatim: as fast as the server can (``rate`` None) or at ``rate``/s."""

    def __init__(self, frames: list[bytes], rate: float | None) -> None:
        self.symbols = list(SYMBOLS)
        self._frames = frames
        self._rate = rate
        self._next = 0
        self._started = 0.0

    async def next(self) -> TapeEvent | None:
        i = self._next
        if i >= len(self._frames):
            return None
        self._next = i + 1
        if self._rate:
            if i == 0:
                self._started = time.monotonic()
            delay = self._started + i / self._rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elif i % 256 == 0:
            await asyncio.sleep(0)  # let pings and the close handshake through
        return TapeEvent(None, None, self._frames[i])

    def skip_trades(self, symbol: str, count: int) -> list[dict[str, Any]]:
        return []


def _serve(path: str, rate: float | None, cpu: int | None, ports: Any) -> None:
    """The child process: serve the frames in ``path`` on a free port, until terminated."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    frames = Path(path).read_bytes().splitlines()

    async def main() -> None:
        tape = _FrameTape(frames, rate)
        async with BinanceServer(tape, Behaviour(ping_interval=None, ping_timeout=None)) as server:
            ports.put(server.port)
            await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def _server(path: Path, rate: float | None, cpu: int | None) -> Iterator[str]:
    """A server process for one run; yields its base WebSocket URL."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(str(path), rate, cpu, ports), daemon=True)
    process.start()
    try:
        port = ports.get(timeout=60)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.join(10)


# --- frames and pinning ---------------------------------------------------------------------


def _frames(count: int) -> Path:
    """``count`` combined-stream frames (trade, book ticker, ... over the symbols), one a line."""
    path = DATA_DIR / f"feed-frames-{count}.jsonl"
    if not path.exists():
        tape = SyntheticTape(SYMBOLS, seed=11)
        steps = (tape.step() for _ in range(count))
        lines = [orjson.dumps({"stream": e.stream, "data": e.data}) for e in steps]
        path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@dataclass(frozen=True, slots=True)
class _Cores:
    feed: int | None
    server: int | None


def _cores() -> _Cores:
    cpus = sorted(os.sched_getaffinity(0))
    return _Cores(cpus[0], cpus[-1]) if len(cpus) > 1 else _Cores(None, None)


@contextmanager
def _pinned(cpu: int | None) -> Iterator[None]:
    """This thread (and the threads it starts meanwhile: librdkafka's, the feed's worker) on ``cpu``."""
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# --- K2: the feed, with a producer that records when each message was delivered -------------


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
    """``MarketProducer`` that records (wall clock ns, value) in every successful delivery callback."""

    def __init__(self, settings: KafkaSettings, metrics: K2Metrics, linger_ms: int | None) -> None:
        super().__init__(settings, metrics)
        if linger_ms is not None:
            self._producer.close()
            self._producer = Producer(_config(settings, linger_ms))
        self.received: dict[bytes, int] = {}
        self.delivered: list[tuple[int, bytes]] = []
        for data_type in DataType:
            self._codecs[data_type] = _RecordingCodec(data_type, self.received)

    def _delivery_callback(self, counts: TopicStats) -> Callable[[KafkaError | None, Message], None]:
        inner = super()._delivery_callback(counts)
        delivered = self.delivered

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            inner(error, message)
            if error is None:
                delivered.append((time.time_ns(), message.value() or b""))

        return on_delivery

    def latencies_ms(self, skip_before_us: int) -> list[float]:
        """Receive → delivery callback of every message received after ``skip_before_us``."""
        found = []
        for at_ns, value in self.delivered:
            received = self.received.get(value)
            if received is not None and received >= skip_before_us:
                found.append((at_ns / 1000 - received) / 1000)
        return found


class _TimedSink(KafkaFeedSink):
    def __init__(self, settings: KafkaSettings, metrics: K2Metrics, linger_ms: int | None = None) -> None:
        super().__init__(settings, metrics)
        self._producer.__exit__(None, None, None)
        self.timed = _TimedProducer(settings, metrics, linger_ms)
        self._producer = self.timed


def _config(kafka: KafkaSettings, linger_ms: int | None = None) -> dict[str, str | int | bool]:
    """K2's producer settings, with another ``linger.ms`` if given."""
    config = producer_config(kafka)
    return config if linger_ms is None else {**config, "linger.ms": linger_ms}


async def _run_feed(binance: BinanceSettings, sink: FeedSink, metrics: K2Metrics, count: int) -> Rate:
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


def _binance(base: K2Settings, url: str) -> BinanceSettings:
    rest = url.replace("ws://", "http://")
    return base.binance.model_copy(update={"ws_url": url, "rest_url": rest, "symbols": SYMBOLS})


# --- the limit: websockets + orjson + a bare producer -----------------------------------------


async def _raw_client(
    url: str, count: int, producer: Producer | None, topic: str, latencies: list[float] | None = None
) -> Rate:
    """Receive ``count`` frames; decode each with orjson and produce it as is (``producer``), or
    only receive them (no producer). With ``latencies``: receive → delivery callback, in ms.
    """
    loads = orjson.loads
    received = 0
    first = 0.0
    stream_url = combined_stream_url(url, SYMBOLS)
    async with connect(stream_url, max_size=None) as ws:
        async for frame in ws:
            if not received:
                first = time.perf_counter()
            received += 1
            if producer is not None:
                at_ns = time.time_ns()
                key = loads(frame)["data"]["s"]
                if latencies is None:
                    _produce(producer, topic, frame, key, None)
                    if received % RAW_POLL_EVERY == 0:
                        producer.poll(0)
                else:
                    _produce(producer, topic, frame, key, _latency_callback(latencies, at_ns))
                    producer.poll(0)
            if received >= count:
                break
    if producer is not None and producer.flush(FLUSH_TIMEOUT_S):
        raise BenchmarkError("the raw producer left messages unsent")
    return Rate(received, time.perf_counter() - first)


def _latency_callback(latencies: list[float], at_ns: int) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is None:
            latencies.append((time.time_ns() - at_ns) / 1e6)

    return on_delivery


def _produce(
    producer: Producer,
    topic: str,
    value: str | bytes,
    key: str,
    on_delivery: Callable[[KafkaError | None, Message], None] | None,
) -> None:
    while True:
        try:
            if on_delivery is None:
                producer.produce(topic, value, key)
            else:
                producer.produce(topic, value, key, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(QUEUE_FULL_WAIT_S)


# --- in memory, step by step -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Steps:
    decode: Rate
    normalise: Rate
    batch: Rate
    produce_k2: Rate
    produce_raw: Rate
    limit: Rate

    @property
    def k2(self) -> Rate:
        """``parse_frame`` + ``to_table`` + ``KafkaFeedSink``, one after the other."""
        seconds = self.normalise.seconds + self.batch.seconds + self.produce_k2.seconds
        return Rate(self.normalise.messages, seconds)


def _timed(call: Callable[[], int]) -> Rate:
    started = time.perf_counter()
    count = call()
    return Rate(count, time.perf_counter() - started)


def _in_memory(kafka: KafkaSettings, frames: list[bytes], raw_topic: str, batch_rows: int) -> _Steps:
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

    sink = KafkaFeedSink(kafka, K2Metrics(CollectorRegistry()))

    def produce_k2() -> int:
        for b in batches:
            sink.produce(b)
        sink.flush()
        return sum(b.rows.num_rows for b in batches)

    keys = [loads(frame)["data"]["s"] for frame in frames]
    producer = Producer(producer_config(kafka))

    def produce_raw() -> int:
        for n, (frame, key) in enumerate(zip(frames, keys, strict=True), start=1):
            _produce(producer, raw_topic, frame, key, None)
            if n % RAW_POLL_EVERY == 0:
                producer.poll(0)
        if producer.flush(FLUSH_TIMEOUT_S):
            raise BenchmarkError("the raw producer left messages unsent")
        return len(frames)

    def limit() -> int:
        for n, frame in enumerate(frames, start=1):
            _produce(producer, raw_topic, frame, loads(frame)["data"]["s"], None)
            if n % RAW_POLL_EVERY == 0:
                producer.poll(0)
        if producer.flush(FLUSH_TIMEOUT_S):
            raise BenchmarkError("the raw producer left messages unsent")
        return len(frames)

    steps = [_timed(step) for step in (decode, normalise, batch)]
    with sink:
        # Warm up: topics, schema registration, the idempotent producer id, connections.
        for b in batches[:2]:
            sink.produce(SourceBatch(b.table, b.rows.slice(0, 1), 1, 0))
        sink.flush()
        steps.append(_timed(produce_k2))
    _produce(producer, raw_topic, frames[0], keys[0], None)
    producer.flush(FLUSH_TIMEOUT_S)
    steps += [_timed(produce_raw), _timed(limit)]
    return _Steps(*steps)


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Figures:
    count: int
    frame_bytes: float
    cores: _Cores
    steps: _Steps
    socket_only: Rate
    raw_socket: Rate
    feed_counting: Rate
    feed_kafka: Rate
    latency: dict[str, list[float]]
    latency_messages: int

    @property
    def k2_latency(self) -> list[float]:
        return self.latency["k2-None"]

    @property
    def raw_latency(self) -> list[float]:
        return self.latency["raw-None"]


def _measure(base: K2Settings, run: str, sizes: Sizes) -> _Figures:
    kafka = base.kafka.model_copy(update={"topic_prefix": f"bench-{run}.feed."})
    raw_topic = f"bench-{run}.feed.raw-frames"
    throughput.create_topics(kafka, {raw_topic: kafka.partitions})
    count = MESSAGES[sizes.name]
    path = _frames(count)
    frames = path.read_bytes().splitlines()
    cores = _cores()
    metrics = K2Metrics(CollectorRegistry())
    batch_rows = base.binance.batch_rows
    with _pinned(cores.feed):
        log(f"{TITLE}: in memory, step by step ({count:,} frames)")
        steps = _in_memory(kafka, frames, raw_topic, batch_rows)
        log(f"{TITLE}: server → websockets client, nothing else")
        with _server(path, None, cores.server) as url:
            socket_only = asyncio.run(_raw_client(url, count, None, raw_topic))
        log(f"{TITLE}: limit: server → websockets → orjson → bare produce")
        with _server(path, None, cores.server) as url:
            producer = Producer(producer_config(kafka))
            raw_socket = asyncio.run(_raw_client(url, count, producer, raw_topic))
        log(f"{TITLE}: BinanceFeed → CountingSink (no Kafka)")
        with _server(path, None, cores.server) as url:
            feed_counting = asyncio.run(_run_feed(_binance(base, url), CountingSink(), metrics, count))
        log(f"{TITLE}: BinanceFeed → KafkaFeedSink")
        with _server(path, None, cores.server) as url, KafkaFeedSink(kafka, metrics) as sink:
            feed_kafka = asyncio.run(_run_feed(_binance(base, url), sink, metrics, count))
        latency_count = min(count, int(LATENCY_RATE * LATENCY_SECONDS[sizes.name]))
        latency: dict[str, list[float]] = {}
        for linger in (None, WHAT_IF_LINGER_MS):
            log(f"{TITLE}: latency at {LATENCY_RATE:,} msg/s, {latency_count:,} messages, linger {linger}")
            latency[f"k2-{linger}"] = _k2_latency(
                base, kafka, metrics, path, cores=cores, count=latency_count, linger_ms=linger
            )
            latency[f"raw-{linger}"] = _raw_latency(
                kafka, path, raw_topic, cores=cores, count=latency_count, linger_ms=linger
            )
    if not all(latency.values()):
        raise BenchmarkError("no latency samples")
    return _Figures(
        count,
        sum(map(len, frames)) / len(frames),
        cores,
        steps,
        socket_only,
        raw_socket,
        feed_counting,
        feed_kafka,
        latency,
        latency_count,
    )


def _k2_latency(
    base: K2Settings,
    kafka: KafkaSettings,
    metrics: K2Metrics,
    path: Path,
    *,
    cores: _Cores,
    count: int,
    linger_ms: int | None,
) -> list[float]:
    """The feed at :data:`LATENCY_RATE`: receive → delivery callback, warm-up left out; with
    ``linger_ms``, the producer's ``linger.ms`` and the feed's ``batch_linger_ms`` both set to it.
    """
    with _server(path, LATENCY_RATE, cores.server) as url, _TimedSink(kafka, metrics, linger_ms) as timed:
        binance = _binance(base, url)
        if linger_ms is not None:
            binance = binance.model_copy(update={"batch_linger_ms": float(linger_ms)})
        started_us = time.time_ns() // 1000
        asyncio.run(_run_feed(binance, timed, metrics, count))
        return timed.timed.latencies_ms(started_us + int(WARMUP_S * 1e6))


def _raw_latency(
    kafka: KafkaSettings, path: Path, topic: str, *, cores: _Cores, count: int, linger_ms: int | None
) -> list[float]:
    """The limit at :data:`LATENCY_RATE`: receive → delivery callback, warm-up left out."""
    found: list[float] = []
    with _server(path, LATENCY_RATE, cores.server) as url:
        producer = Producer(_config(kafka, linger_ms))
        asyncio.run(_raw_client(url, count, producer, topic, found))
    return found[int(LATENCY_RATE * WARMUP_S) :]


def _clean_up(base: K2Settings, run: str) -> list[str]:
    """Remove this run's topics and registry subjects; return what could not be removed."""
    prefix = f"bench-{run}."
    failed: list[str] = []
    admin = AdminClient({"bootstrap.servers": base.kafka.bootstrap_servers})
    try:
        topics = [t for t in admin.list_topics(timeout=30).topics if t.startswith(prefix)]
        for future in (admin.delete_topics(topics, operation_timeout=30) if topics else {}).values():
            future.result()
    except Exception as exc:
        failed.append(f"Kafka topics: {exc}")
    try:
        with SchemaRegistryClient({"url": base.kafka.schema_registry_url}) as registry:
            for subject in registry.get_subjects():
                if subject.startswith(prefix):
                    registry.delete_subject(subject)
                    registry.delete_subject(subject, permanent=True)
    except Exception as exc:
        failed.append(f"registry subjects: {exc}")
    return failed


def run(sizes: Sizes) -> Section:
    """Measure on the platform's Kafka (started when it is not running, and stopped again after)."""
    configure_logging(ObsSettings(log_level=LogLevel.WARNING, log_format="console"))
    base = K2Settings(profile=Profile.PLATFORM)
    running = {h.name for h in stack.status(base) if h.running}
    stack.up(base)
    platform = {h.name: h.detail for h in stack.status(base)}
    run_id = uuid.uuid4().hex[:8]
    log(f"{TITLE}: run {run_id} (topic prefix bench-{run_id}.feed.)")
    try:
        figures = _measure(base, run_id, sizes)
    finally:
        for what in _clean_up(base, run_id):
            log(f"{TITLE}: could not remove {what}")
        for service in reversed(stack.services(base)):
            if service.name not in running:
                with suppress(Exception):
                    service.stop()
    return _section(figures, base, platform)


def _q(values: list[float], q: float) -> float:
    return percentile(values, q)


def _section(f: _Figures, base: K2Settings, platform: dict[str, str]) -> Section:
    s = f.steps
    one_core = (
        f"the feed's process pinned to CPU {f.cores.feed}, the server's to CPU {f.cores.server}"
        if f.cores.feed is not None
        else "one CPU only, shared by the feed and the server"
    )
    step_rows = [
        ("`orjson.loads` alone", s.decode),
        ("`parse_frame` (orjson + v2 row: decimals, ids, times)", s.normalise),
        (f"`to_table`: rows → Arrow, {base.binance.batch_rows:,}-row batches", s.batch),
        ("`KafkaFeedSink.produce` (`MarketProducer`: Avro + produce) + `flush`", s.produce_k2),
        ("K2 in memory: the three above one after the other", s.k2),
        ("bare `Producer.produce` of the frames + `flush`", s.produce_raw),
        ("orjson decode + bare produce + `flush` (the limit)", s.limit),
    ]
    socket_rows = [
        ("server → websockets client, nothing else (the server's pace)", f.socket_only),
        ("server → websockets → orjson → bare produce, acknowledged (the limit)", f.raw_socket),
        ("server → `BinanceFeed` → `CountingSink` (decoded, normalised, Arrow; no Kafka)", f.feed_counting),
        ("server → `BinanceFeed` → `KafkaFeedSink`, acknowledged (K2)", f.feed_kafka),
    ]
    what_if = f"linger.ms = {WHAT_IF_LINGER_MS}"
    latency_rows = [
        ("`BinanceFeed` → `KafkaFeedSink` (K2)", f.k2_latency),
        ("websockets → orjson → bare produce, `poll(0)` after each (the limit)", f.raw_latency),
        (
            f"K2 with {what_if} and `batch_linger_ms` = {WHAT_IF_LINGER_MS} (what-if, not the defaults)",
            f.latency[f"k2-{WHAT_IF_LINGER_MS}"],
        ),
        (f"the limit with {what_if} (what-if)", f.latency[f"raw-{WHAT_IF_LINGER_MS}"]),
    ]
    return Section(
        title=f"{TITLE} ({f.count / 1e3:,.0f}k Binance frames through Kafka)",
        description=(
            f"{f.count:,} combined-stream frames (`SyntheticTape` over {', '.join(SYMBOLS)}: trades and "
            f"book tickers alternating, {f.frame_bytes:.0f} bytes on average) served by "
            "`k2.testing.binance_server.BinanceServer` from memory, as fast as it can send, to K2's "
            f"`BinanceFeed` with its default settings and the platform's Kafka "
            f"({platform.get('kafka', '?')}; {base.kafka.partitions} partitions) and registry; "
            f"{one_core}. The broker shares the machine's cores. Latency runs at a steady "
            f"{LATENCY_RATE:,} msg/s for {f.latency_messages:,} messages, the first {WARMUP_S:g} s "
            "left out as warm-up."
        ),
        limit_name=(
            "orjson decode + bare confluent_kafka produce of the same frames, K2's producer settings"
        ),
        measures=[
            Measure(
                "Feed: socket → decoded → normalised → produced (acknowledged), msg/s",
                Unit.MESSAGES_PER_SECOND,
                f.feed_kafka.per_second,
                f.raw_socket.per_second,
                THROUGHPUT_TARGET,
            ),
            Measure(
                "In memory on one core: `parse_frame` + `to_table` + `KafkaFeedSink`, msg/s",
                Unit.MESSAGES_PER_SECOND,
                s.k2.per_second,
                s.limit.per_second,
            ),
            Measure(
                "Normalised (`parse_frame`, orjson included) alone, msg/s",
                Unit.MESSAGES_PER_SECOND,
                s.normalise.per_second,
                s.decode.per_second,
            ),
            Measure(
                f"Socket → Kafka delivery callback at {LATENCY_RATE / 1e3:g}k msg/s: p50",
                Unit.MILLISECONDS,
                _q(f.k2_latency, 0.5),
                _q(f.raw_latency, 0.5),
            ),
            Measure(
                f"Socket → Kafka delivery callback at {LATENCY_RATE / 1e3:g}k msg/s: p99",
                Unit.MILLISECONDS,
                _q(f.k2_latency, 0.99),
                _q(f.raw_latency, 0.99),
                LATENCY_TARGET,
            ),
        ],
        tables=[
            Table(
                f"In memory, step by step, on one core ({f.count:,} frames)",
                ("Step", "msg/s", "µs per message"),
                [(label, f"{r.per_second / 1e3:,.1f} k", f"{r.micros:.2f}") for label, r in step_rows],
            ),
            Table(
                "Through the socket: first frame received → last message handled",
                ("Path", "msg/s", "µs per message"),
                [(label, f"{r.per_second / 1e3:,.1f} k", f"{r.micros:.2f}") for label, r in socket_rows],
            ),
            Table(
                f"Latency, ms from receipt to the delivery callback, at {LATENCY_RATE:,} msg/s",
                ("Path", "Messages", "p50", "p90", "p99", "max"),
                [
                    (label, f"{len(v):,}", *(f"{_q(v, q):.1f}" for q in (0.5, 0.9, 0.99, 1.0)))
                    for label, v in latency_rows
                ],
            ),
        ],
        notes=[
            "Throughput clocks run from the first frame received to the end of the flush that saw the "
            "last message acknowledged (acks=all, idempotent). The feed reads the socket on the event loop "
            "and produces on its worker thread; librdkafka's threads run on the same core.",
            f"Both producers use `producer_config` (lz4, linger.ms = {LINGER_MS}, idempotent, acks=all): "
            f"a message waits up to {LINGER_MS} ms for its batch, so linger bounds latency from below for "
            f"K2 and the limit alike. The feed adds its own batching (`batch_linger_ms` = "
            f"{base.binance.batch_linger_ms:g} ms, `batch_rows` = {base.binance.batch_rows:,}); its "
            "delivery callbacks run when `MarketProducer` polls, after each batch it produces.",
            "K2's receive time is the feed's `ingestion_timestamp` (wall clock on receipt, µs), carried "
            "in the Avro value; the delivery time is the wall clock in `MarketProducer`'s delivery "
            "callback. The limit takes both clocks around a bare `Producer.produce`.",
            "The server replays pre-built frames (no per-message price generation) and pings never, so "
            "its pace is websockets' send path; the first row of the socket table shows it.",
            "Targets from `../shared/reference/targets.md`, P6: ≥ 100k msg/s decoded, normalised and "
            "produced on one core; p99 socket → Kafka ≤ 5 ms.",
            "The run works under its own topic prefix (`bench-<run>.feed.`) and removes its topics and "
            "registry subjects at the end.",
        ],
    )
