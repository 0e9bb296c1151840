"""Benchmark 5: streaming, on the platform's services (Kafka KRaft, the schema registry, the
PostgreSQL catalog and the MinIO warehouse), all on one synthetic market's trades:

1. producing: ``MarketProducer`` (Avro encode + produce + acknowledged) beside librdkafka
   producing the same values, pre-encoded, with the same settings; and ``RecordCodec.encode`` alone;
2. the sink: first message consumed to last rows committed to Iceberg, beside librdkafka draining
   the same topic without decoding; and ``RecordCodec.decode`` alone;
3. freshness, with the sink running (:mod:`benchmarks.stream.freshness`).

The run works under a topic prefix, catalog names, a warehouse folder and consumer groups of its
own, and removes them (with its registry subjects) at the end; it touches nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pyarrow as pa
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from benchmarks.common import Sizes, log, percentile
from benchmarks.on_platform import clean_up, isolated, platform_run
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.stream import freshness as stream_freshness
from benchmarks.stream import throughput
from benchmarks.stream.throughput import Rate, SinkClock
from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.kafka.admin import ensure_topics
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.dead_letters import PARTITIONS as DEAD_LETTER_PARTITIONS
from k2.kafka.topics import dlq_topic, value_subject
from k2.lake.catalog import close_catalog, open_catalog
from k2.lake.tables import TRADES
from k2.settings import K2Settings, StreamSettings
from k2.stream.sink import SinkReport

TITLE = "Streaming"
#: Trades produced and consumed by the throughput measures, and the freshness run's length.
MESSAGES = {"full": 600_000, "quick": 50_000}
FRESHNESS_SECONDS = {"full": 60.0, "quick": 15.0}
FRESHNESS_RATE = 1_000
SYMBOLS = 20
PRODUCE_TARGET = Target(300_000, Unit.MESSAGES_PER_SECOND)  # P2
SINK_TARGET = Target(100_000, Unit.MESSAGES_PER_SECOND)  # P3
VISIBLE_TARGET = Target(15_000, Unit.MILLISECONDS)  # P4
API_TARGET = Target(1_000, Unit.MILLISECONDS)  # P4 with the F15 tail


def _trades(count: int) -> pa.Table:
    """``count`` synthetic trades in time order, as a live feed sends them."""
    market = SyntheticMarket(symbols=SYMBOLS, days=1, trades_per_day=count // SYMBOLS)
    source = SyntheticSource(market, batch_rows=count, ingested_at=datetime.now(UTC))
    rows = pa.concat_tables([b.rows for b in source.batches() if b.table is TRADES])
    return rows.sort_by([("timestamp", "ascending"), ("symbol", "ascending")])


@dataclass(frozen=True, slots=True)
class _Figures:
    """Everything one run measured."""

    rows: pa.Table
    value_bytes: float
    encode: Rate
    raw_produce: Rate
    k2_produce: Rate
    raw_drain: Rate
    decode: Rate
    sink_report: SinkReport
    clock: SinkClock
    commits: list[tuple[int, int]]
    fresh: stream_freshness.Freshness
    fresh_commits: list[tuple[int, int]]

    @property
    def sink(self) -> Rate:
        """Messages from the sink's first consume to its last commit."""
        return Rate(self.rows.num_rows, self.clock.last_commit - self.clock.first_take)


def _measure(base: K2Settings, run: str, sizes: Sizes) -> _Figures:
    bulk, raw, fresh = (isolated(base, run, phase) for phase in ("bulk", "raw", "fresh"))
    count = MESSAGES[sizes.name]
    rows = _trades(count)
    topic, raw_topic = throughput.topic_of(bulk.kafka, rows), throughput.topic_of(raw.kafka, rows)
    dead_letters = dlq_topic(rows["exchange"][0].as_py(), bulk.kafka.topic_prefix)
    partitions = bulk.kafka.partitions
    ensure_topics(
        bulk.kafka, {topic: partitions, raw_topic: partitions, dead_letters: DEAD_LETTER_PARTITIONS}
    )
    schema = Schema(orjson.dumps(RecordCodec(TRADES.record).schema).decode(), "AVRO")
    with SchemaRegistryClient({"url": bulk.kafka.schema_registry_url}) as registry:
        schema_id = registry.register_schema(value_subject(topic), schema)
    log(f"{TITLE}: encode {count:,} trades alone")
    values, encode = throughput.encode(rows, schema_id)
    value_bytes = sum(map(len, values)) / len(values)
    log(f"{TITLE}: librdkafka limit: produce them pre-encoded")
    raw_produce = throughput.produce_raw(raw.kafka, raw_topic, rows["symbol"].to_pylist(), values)
    del values
    log(f"{TITLE}: MarketProducer")
    k2_produce = throughput.produce_k2(bulk.kafka, rows)
    log(f"{TITLE}: librdkafka limit: drain the topic without decoding")
    consumed, raw_drain = throughput.drain_raw(bulk, topic, count)
    log(f"{TITLE}: decode alone")
    decode = throughput.decode(bulk, consumed, schema_id)
    del consumed
    log(f"{TITLE}: the sink, into a fresh lake")
    sink_report, clock, commits = throughput.sink(bulk, count)
    seconds = FRESHNESS_SECONDS[sizes.name]
    log(f"{TITLE}: freshness for {seconds:g} s at {FRESHNESS_RATE:,} trades/s")
    freshness = stream_freshness.measure(fresh, rows, seconds, FRESHNESS_RATE)
    catalog = open_catalog(fresh)
    try:
        fresh_commits = throughput.commits_of(catalog.load_table((fresh.lake.namespace, TRADES.name)))
    finally:
        close_catalog(catalog)
    return _Figures(
        rows,
        value_bytes,
        encode,
        raw_produce,
        k2_produce,
        raw_drain,
        decode,
        sink_report,
        clock,
        commits,
        freshness,
        fresh_commits,
    )


def run(sizes: Sizes) -> Section:
    """Measure on the platform (started when it is not running, and stopped again after)."""
    with platform_run(TITLE) as on:
        try:
            figures = _measure(on.base, on.run_id, sizes)
        finally:
            lakes = [isolated(on.base, on.run_id, p) for p in ("bulk", "fresh")]
            for what in clean_up(on, lakes):
                log(f"{TITLE}: could not remove {what}")
    return _section(figures, on.base, on.services)


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def _spread(values: list[int]) -> str:
    return f"{min(values):,}" if min(values) == max(values) else f"{min(values):,}-{max(values):,}"


def _section(figures: _Figures, base: K2Settings, platform: dict[str, str]) -> Section:
    count = figures.rows.num_rows
    return Section(
        title=f"{TITLE} ({count / 1e3:,.0f}k trades through Kafka)",
        description=_description(figures, base, platform),
        limit_name=(
            "librdkafka alone (same producer settings on pre-encoded values; a consumer that does not decode)"
        ),
        measures=_measures(figures),
        tables=_tables(figures),
        notes=_notes(figures, base.stream),
    )


def _description(f: _Figures, base: K2Settings, platform: dict[str, str]) -> str:
    """What ran, on what, for how long."""
    count, fresh = f.rows.num_rows, f.fresh
    period_ms = stream_freshness.BATCH_MESSAGES / FRESHNESS_RATE * 1000
    return (
        f"{count:,} trades of `SyntheticMarket(symbols={SYMBOLS}, days=1, "
        f"trades_per_day={count // SYMBOLS:_})` "
        f"in time order (Avro values of {f.value_bytes:.0f} bytes on average), through the platform's "
        f"Kafka ({platform.get('kafka', '?')}; {base.kafka.partitions} partitions, replication "
        f"{base.kafka.replication_factor}), registry ({platform.get('registry', '?').split(',')[0]}), "
        "PostgreSQL catalog and MinIO warehouse, all on this machine and sharing its cores with the "
        "benchmark. The producer and the sink are measured one at a time on the same data; then "
        f"freshness, with the sink running on a thread while `MarketProducer` sends "
        f"{stream_freshness.BATCH_MESSAGES} trades every {period_ms:.0f} ms for {fresh.seconds:.0f} s."
    )


def _measures(f: _Figures) -> list[Measure]:
    """Throughput of the producer and the sink, and freshness, beside librdkafka's."""
    fresh = f.fresh
    return [
        Measure(
            "Produce: `MarketProducer` (Avro encode + produce + acknowledged), msg/s",
            Unit.MESSAGES_PER_SECOND,
            f.k2_produce.per_second,
            f.raw_produce.per_second,
            PRODUCE_TARGET,
        ),
        Measure(
            "`RecordCodec.encode` alone, msg/s",
            Unit.MESSAGES_PER_SECOND,
            f.encode.per_second,
            f.raw_produce.per_second,
        ),
        Measure(
            "Sink: first message consumed → last rows committed to Iceberg, msg/s",
            Unit.MESSAGES_PER_SECOND,
            f.sink.per_second,
            f.raw_drain.per_second,
            SINK_TARGET,
        ),
        Measure(
            "`RecordCodec.decode` alone, msg/s",
            Unit.MESSAGES_PER_SECOND,
            f.decode.per_second,
            f.raw_drain.per_second,
        ),
        Measure(
            "Produce → visible in a lake query: p50",
            Unit.MILLISECONDS,
            _ms(fresh.lake, 0.5),
            _ms(fresh.raw, 0.5),
        ),
        Measure(
            "Produce → visible in a lake query: p95",
            Unit.MILLISECONDS,
            _ms(fresh.lake, 0.95),
            _ms(fresh.raw, 0.95),
            VISIBLE_TARGET,
        ),
        Measure(
            "Produce → visible to the API (lake + Kafka tail): p50",
            Unit.MILLISECONDS,
            _ms(fresh.api, 0.5),
            _ms(fresh.raw, 0.5),
        ),
        Measure(
            "Produce → visible to the API (lake + Kafka tail): p95",
            Unit.MILLISECONDS,
            _ms(fresh.api, 0.95),
            _ms(fresh.raw, 0.95),
            API_TARGET,
        ),
    ]


def _tables(f: _Figures) -> list[Table]:
    """Where the producer's and the sink's time goes, and freshness per path."""
    clock, fresh, count = f.clock, f.fresh, f.rows.num_rows
    serial = Rate(count, f.encode.seconds + f.raw_produce.seconds)
    span = clock.last_commit - clock.first_take
    produce_rows = [
        ("`RecordCodec.encode` alone, in 50,000-row chunks", f.encode),
        ("librdkafka: produce pre-encoded values until acknowledged (the limit)", f.raw_produce),
        ("The two one after the other (sum of the above)", serial),
        ("`MarketProducer`: `produce_batch` + `flush`", f.k2_produce),
    ]
    sink_steps = [
        ("From the first message consumed to the last commit", span),
        ("  `Consumer.consume` and the loop around it", span - clock.take - clock.commit),
        ("  `RecordCodec.decode`", clock.decode),
        ("  the rest of `_take` (per-message offsets, sequence checks, metrics)", clock.take - clock.decode),
        (
            "  `LakeWriter.append` (dedup against the lake, sort, Parquet to MinIO, catalog commit)",
            clock.append,
        ),
        (
            "  the rest of `_commit` (offsets read back, dead-letter flush, group commit)",
            clock.commit - clock.append,
        ),
    ]
    delays = [
        ("Lake query (the query engine, polled every 0.2 s)", fresh.lake),
        ("API: lake + `KafkaTail.read` (read every 0.1 s)", fresh.api),
        ("librdkafka consumer, no decoding (the limit)", fresh.raw),
        ("Duration of one lake poll (plan + DuckDB query)", fresh.lake_polls),
        ("Duration of one tail read (table load + `KafkaTail.read`)", fresh.tail_reads),
    ]
    return [
        Table(
            f"Where the producer's time goes ({count:,} messages)",
            ("Step", "msg/s", "µs per message", "Share of `MarketProducer`'s time"),
            [
                (
                    label,
                    f"{r.per_second / 1e3:,.1f} k",
                    f"{r.micros:.2f}",
                    f"{r.seconds / f.k2_produce.seconds:.0%}",
                )
                for label, r in produce_rows
            ],
        ),
        Table(
            f"Where the sink's time goes ({count:,} messages, {f.sink_report.commits} commits)",
            ("Step", "Seconds", "Share"),
            [(label, f"{s:.2f}", f"{s / span:.0%}") for label, s in sink_steps],
        ),
        Table(
            f"Freshness: milliseconds from `produce_batch` to visible, per message "
            f"({fresh.messages:,} trades at {fresh.rate:,.0f}/s)",
            ("Path", "p50", "p95", "p99", "max"),
            [(label, *(f"{_ms(v, q):,.0f}" for q in (0.5, 0.95, 0.99, 1.0))) for label, v in delays],
        ),
    ]


def _notes(f: _Figures, stream: StreamSettings) -> list[str]:
    """How each figure was measured, and the targets."""
    clock, fresh = f.clock, f.fresh
    per_commit = "; ".join(
        f"{seconds:.1f} s for {rows:,} rows in {files} data file(s)"
        for seconds, (rows, files) in zip(clock.commits, [c for c in f.commits if c[0]], strict=False)
    )
    fresh_commits = [c for c in f.fresh_commits if c[0]]
    return [
        "Both producers run `producer_config` (idempotent, acks=all, lz4, linger 20 ms, batches of "
        "1 MB or 10,000 messages); each clock stops when `flush` returns with every message "
        "acknowledged. `MarketProducer`'s time includes its route setup (topic lookup, subject "
        "compatibility, schema registration) and a Python delivery callback per message; the limit "
        "registers no callback.",
        f"The sink ran with `commit_rows` = {stream.commit_rows:,}, `commit_interval_s` = "
        f"{stream.commit_interval_s:g} and `poll_messages` = {stream.poll_messages:,} (the defaults). "
        "Its clock runs from the first `consume()` that returned messages to the end of the commit "
        "holding the last one: it stops itself once every message is consumed, which forces that "
        f"commit. Its commits: {per_commit}. The limit's clock runs "
        "from its first message to its last, with librdkafka's default fetch sizes, as the sink's.",
        "Freshness: a message's delay runs from just before the `produce_batch` call that sent it to "
        "the end of the first poll that returned it. A lake delay cannot go much below the commit "
        "interval: a message waits up to one interval for the next commit, so p95 ≈ 0.95 x interval "
        "+ commit time. The API figure is the earlier of the tail and the lake, as "
        f"`include_live=true` reads them; {fresh.tail_first:,} of {fresh.messages:,} messages showed "
        f"in the tail first. A tail read decodes every message the lake does not hold yet: "
        f"{sum(fresh.tail_sizes) / max(len(fresh.tail_sizes), 1):,.0f} on average, up to "
        f"{max(fresh.tail_sizes, default=0):,}. The sink made {fresh.commits} commits (warm-up "
        f"included), {fresh.commit_seconds / max(fresh.commits, 1):.2f} s each on average, adding "
        f"{_spread([c[1] for c in fresh_commits])} data file(s) per commit.",
        "Targets from `../shared/reference/targets.md`: P2 produce ≥ 300k msg/s; P3 consume → "
        "Iceberg ≥ 100k msg/s (its floor; the target there is 250k); P4 visible in the lake ≤ 15 s "
        "p95 and, with the F15 tail, API freshness ≤ 1 s.",
        "The earlier implementation of the streaming path measured 32-142 msg/s end to end.",
        "The run works under its own topic prefix (`bench-<run>.`), catalogs (`bench_<run>_*`), "
        "warehouse folder (`s3://k2-lake/bench/<run>/`) and consumer groups, and removes them and "
        "its registry subjects at the end.",
    ]
