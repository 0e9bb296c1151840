"""Benchmark 6: the live Binance feed (targets P6), fed by the local Binance-protocol server.

K2's feed (:class:`~k2.ingest.live.binance.feed.BinanceFeed`: WebSocket read, orjson decode, checks, Arrow
batches built a column at a time, :class:`~k2.ingest.live.output.KafkaFeedOutput` → ``MarketProducer``)
runs pinned to one core; the server (:mod:`benchmarks.feed.server`, replaying pre-built
combined-stream frames) runs in a child process pinned to the other, as fast as it can send or at
a fixed pace. Beside it, in the same run and on the same frames, the limit
(:mod:`benchmarks.feed.limit`): orjson decode + a bare confluent_kafka ``Producer`` with K2's
producer settings, over the same socket client and in memory (:mod:`benchmarks.feed.steps`).

1. throughput, end to end (first frame received → last message acknowledged) and step by step;
2. latency at a steady pace: a message's receive time (the feed's ``ingestion_timestamp``; the
   raw client's clock on receipt) → its delivery callback.

The run works under a topic prefix of its own and removes its topics and registry subjects.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from benchmarks.common import BenchmarkError, Sizes, log, percentile
from benchmarks.feed.k2 import binance_settings, k2_latency, run_feed
from benchmarks.feed.limit import bare_producer, raw_client, raw_latency
from benchmarks.feed.server import SYMBOLS, Cores, cores, frame_server, frames_file, pinned
from benchmarks.feed.steps import Steps, in_memory
from benchmarks.on_platform import platform_run, remove_topics_and_subjects
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.stream.throughput import Rate
from k2.ingest.live.binance.protocol import EXCHANGE
from k2.ingest.live.output import CountingOutput, KafkaFeedOutput
from k2.ingest.producer import LINGER_MS
from k2.kafka.admin import ensure_topics
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings

TITLE = "Live feed"
#: Frames of each throughput run.
MESSAGES = {"full": 300_000, "quick": 30_000}
#: The steady paces of the latency runs (Binance's spot trades and book tickers of three majors
#: come at about the first), and how long each lasts; the first second is warm-up.
LATENCY_RATES = (1_000, 10_000)
LATENCY_SECONDS = {"full": 20.0, "quick": 5.0}
WARMUP_S = 1.0
THROUGHPUT_TARGET = Target(100_000, Unit.MESSAGES_PER_SECOND)  # P6
LATENCY_TARGET = Target(5.0, Unit.MILLISECONDS)  # P6
P99 = 0.99


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Figures:
    count: int
    frame_bytes: float
    cores: Cores
    steps: Steps
    socket_only: Rate
    raw_socket: Rate
    feed_counting: Rate
    feed_kafka: Rate
    #: Receive → acknowledged, ms, by (path, rate); path ``k2`` or ``raw``.
    latency: dict[tuple[str, int], list[float]]
    latency_seconds: float


def _measure(base: K2Settings, run: str, sizes: Sizes) -> _Figures:
    kafka = base.kafka.model_copy(update={"topic_prefix": f"bench-{run}.feed."})
    raw_topic = f"bench-{run}.feed.raw-frames"
    ensure_topics(kafka, {raw_topic: kafka.partitions})
    count = MESSAGES[sizes.name]
    path = frames_file(count)
    frames = path.read_bytes().splitlines()
    cpus = cores()
    metrics = K2Metrics(CollectorRegistry())
    linger = base.binance.producer_linger_ms
    with pinned(cpus.feed):
        log(f"{TITLE}: in memory, step by step ({count:,} frames)")
        steps = in_memory(kafka, frames, raw_topic, base.binance.batch_rows, linger)
        log(f"{TITLE}: server → websockets client, nothing else")
        with frame_server(path, None, cpus.server) as url:
            socket_only = asyncio.run(raw_client(url, count, kafka, None, raw_topic))
        log(f"{TITLE}: limit: server → websockets → orjson → bare produce")
        with frame_server(path, None, cpus.server) as url:
            raw_socket = asyncio.run(raw_client(url, count, kafka, bare_producer(kafka, linger), raw_topic))
        log(f"{TITLE}: BinanceFeed → CountingOutput (no Kafka)")
        with frame_server(path, None, cpus.server) as url:
            feed_counting = asyncio.run(
                run_feed(binance_settings(base, url), CountingOutput(), metrics, count)
            )
        log(f"{TITLE}: BinanceFeed → KafkaFeedOutput")
        with (
            frame_server(path, None, cpus.server) as url,
            KafkaFeedOutput(kafka, metrics, exchange=EXCHANGE, linger_ms=linger) as sink,
        ):
            feed_kafka = asyncio.run(run_feed(binance_settings(base, url), sink, metrics, count))
        seconds = LATENCY_SECONDS[sizes.name]
        latency: dict[tuple[str, int], list[float]] = {}
        for rate in LATENCY_RATES:
            runs = min(count, int(rate * seconds))
            warm_up = int(rate * WARMUP_S)
            log(f"{TITLE}: latency, {runs:,} messages at {rate:,}/s")
            k2 = k2_latency(base, kafka, metrics, path, cores=cpus, rate=rate, count=runs, linger_ms=linger)
            raw = raw_latency(kafka, path, raw_topic, cores=cpus, rate=rate, count=runs, linger_ms=linger)
            latency["k2", rate], latency["raw", rate] = k2[warm_up:], raw[warm_up:]
    if not all(latency.values()):
        raise BenchmarkError("no latency samples")
    return _Figures(
        count,
        sum(map(len, frames)) / len(frames),
        cpus,
        steps,
        socket_only,
        raw_socket,
        feed_counting,
        feed_kafka,
        latency,
        seconds,
    )


def run(sizes: Sizes) -> Section:
    """Measure on the platform's Kafka (started when it is not running, and stopped again after)."""
    with platform_run(TITLE) as on:
        try:
            figures = _measure(on.base, on.run_id, sizes)
        finally:
            for what in remove_topics_and_subjects(on):
                log(f"{TITLE}: could not remove {what}")
    return _section(figures, on.base, on.services)


def _q(values: list[float], q: float) -> float:
    return percentile(values, q)


def _section(f: _Figures, base: K2Settings, platform: dict[str, str]) -> Section:
    s = f.steps
    latency_measures = [
        Measure(
            f"Socket → Kafka acknowledged at {rate / 1e3:g}k msg/s: {name}",
            Unit.MILLISECONDS,
            _q(f.latency["k2", rate], q),
            _q(f.latency["raw", rate], q),
            LATENCY_TARGET if q == P99 else None,
        )
        for rate in LATENCY_RATES
        for name, q in (("p50", 0.5), ("p99", P99))
    ]
    return Section(
        title=f"{TITLE} ({f.count / 1e3:,.0f}k Binance frames through Kafka)",
        description=_description(f, base, platform),
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
                "In memory on one core: `parse_frame` + `to_table` + `KafkaFeedOutput`, msg/s",
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
            *latency_measures,
        ],
        tables=_tables(f, base),
        notes=_notes(base),
    )


def _description(f: _Figures, base: K2Settings, platform: dict[str, str]) -> str:
    """What ran, on what, at which paces."""
    one_core = (
        f"the feed's process pinned to CPU {f.cores.feed}, the server's to CPU {f.cores.server}"
        if f.cores.feed is not None
        else "one CPU only, shared by the feed and the server"
    )
    return (
        f"{f.count:,} combined-stream frames (`SyntheticTape` over {', '.join(SYMBOLS)}: trades and "
        f"book tickers alternating, {f.frame_bytes:.0f} bytes on average) served by "
        "`k2.ingest.live.binance.server.BinanceServer` from memory, as fast as it can send, to K2's "
        f"`BinanceFeed` with its default settings and the platform's Kafka "
        f"({platform.get('kafka', '?')}; {base.kafka.partitions} partitions) and registry; "
        f"{one_core}. The broker shares the machine's cores. Latency runs at a steady "
        f"{' and '.join(f'{r:,}' for r in LATENCY_RATES)} msg/s for {f.latency_seconds:g} s each, the "
        f"first {WARMUP_S:g} s left out as warm-up; Binance's spot streams of three major pairs come at "
        "about the first pace."
    )


def _tables(f: _Figures, base: K2Settings) -> list[Table]:
    """Where the feed's time goes, step by step, through the socket, and its latency."""
    s = f.steps
    step_rows = [
        ("`orjson.loads` alone", s.decode),
        ("`parse_frame` (orjson + checks of every field)", s.normalise),
        (
            f"`to_table`: v2 rows (ids, decimals, times) in Arrow, {base.binance.batch_rows:,}-row batches",
            s.batch,
        ),
        ("`KafkaFeedOutput.produce` (`MarketProducer`: Avro + produce) + `flush`", s.produce_k2),
        ("K2 in memory: the three above one after the other", s.k2),
        ("bare `Producer.produce` of the frames + `flush`", s.produce_raw),
        ("orjson decode + bare produce + `flush` (the limit)", s.limit),
    ]
    socket_rows = [
        ("server → websockets client, nothing else (the server's pace)", f.socket_only),
        ("server → websockets → orjson → bare produce, acknowledged (the limit)", f.raw_socket),
        ("server → `BinanceFeed` → `CountingOutput` (decoded, normalised, Arrow; no Kafka)", f.feed_counting),
        ("server → `BinanceFeed` → `KafkaFeedOutput`, acknowledged (K2)", f.feed_kafka),
    ]
    latency_rows = [
        (f"{label} at {rate:,} msg/s", f.latency[path, rate])
        for rate in LATENCY_RATES
        for path, label in (
            ("k2", "`BinanceFeed` → `KafkaFeedOutput` (K2)"),
            ("raw", "websockets → orjson → bare produce, `poll(0)` after each (the limit)"),
        )
    ]
    return [
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
            "Latency, ms from receipt to the delivery callback",
            ("Path and pace", "Messages", "p50", "p90", "p99", "max"),
            [
                (label, f"{len(v):,}", *(f"{_q(v, q):.1f}" for q in (0.5, 0.9, 0.99, 1.0)))
                for label, v in latency_rows
            ],
        ),
    ]


def _notes(base: K2Settings) -> list[str]:
    """How each figure was measured, and the targets."""
    return [
        "Throughput clocks run from the first frame received to the end of the flush that saw the "
        "last message acknowledged (acks=all, idempotent). The feed reads the socket on the event loop "
        "and produces on its worker thread; librdkafka's threads run on the same core.",
        "Both producers use `producer_config` (lz4, idempotent, acks=all) with the feed's "
        f"`producer_linger_ms` = {base.binance.producer_linger_ms:g} ms (bulk loads use "
        f"{LINGER_MS} ms): a message may wait that long for its batch, K2's and the limit's alike. "
        "The feed batches what arrived while the previous batch was produced (`batch_linger_ms` = "
        f"{base.binance.batch_linger_ms:g} ms, at most {base.binance.batch_rows:,} rows); a thread "
        "of `KafkaFeedOutput` serves its delivery reports as they come.",
        "K2's receive time is the feed's `ingestion_timestamp` (wall clock on receipt, µs), carried "
        "in the Avro value; the delivery time is the wall clock in `MarketProducer`'s delivery "
        "callback. The limit takes both clocks around a bare `Producer.produce`.",
        "The server replays pre-built frames (no per-message price generation) and pings never, so "
        "its pace is websockets' send path; the first row of the socket table shows it.",
        "Targets from `../shared/reference/targets.md`, P6: ≥ 100k msg/s decoded, normalised and "
        "produced on one core; p99 socket → Kafka ≤ 5 ms.",
        "The run works under its own topic prefix (`bench-<run>.feed.`) and removes its topics and "
        "registry subjects at the end.",
    ]
