"""The scale benchmark: the cost curve of K2's loads at 1M, 10M and 100M trades on the embedded
lake and on the platform's storage, trades through Kafka, and query latency at concurrency 1 and 8
on the largest lake; where one machine stops, from the measured curve.

It runs apart from the full ``make bench`` (``make bench-scale``; about half an hour on the
reference machine): the full run keeps this section of ``docs/benchmarks.md`` as it is, and a
full-size run of this benchmark replaces only its own section there.

The platform part runs on a platform of its own on free ports (PostgreSQL, MinIO, Kafka and the
registry; :func:`benchmarks.on_platform.private_platform_run`), removed whole at the end.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from benchmarks.common import DATA_DIR, MIB, Sizes, fresh_dir, log
from benchmarks.ingest.runs import IngestRun, run_child
from benchmarks.on_platform import PlatformRun, isolated, private_platform_run
from benchmarks.results import Measure, Section, Table, Unit
from benchmarks.scale import queries
from benchmarks.scale.source import (
    DAYS,
    FILE_ROWS,
    SYMBOLS,
    TRADES_PER_DAY,
    contents,
    ensure_source,
    tables,
)
from benchmarks.stream import throughput
from benchmarks.stream.throughput import Rate
from k2.kafka.admin import ensure_topics
from k2.kafka.dead_letters import PARTITIONS as DEAD_LETTER_PARTITIONS
from k2.kafka.topics import dlq_topic
from k2.lake.catalog import close_catalog, open_catalog
from k2.query import QueryEngine
from k2.settings import K2Settings

TITLE = "Scale"
#: Trades per load, smallest first; the query benchmarks read the largest lake.
ROWS = {"full": (1_000_000, 10_000_000, 100_000_000), "quick": (1_000_000, 2_000_000)}
#: Trades through Kafka (producer, then sink), smallest first.
KAFKA_ROWS = {"full": (1_000_000, 10_000_000), "quick": (1_000_000,)}
QUERY_RUNS = {"full": 20, "quick": 4}
QUERY_WARMUP = 2
PLATFORM_SERVICES = ("postgres", "minio", "kafka", "registry")
#: The slowest sink pace the benchmark waits for before it calls the sink stuck.
SLOWEST_SINK = 20_000
EMBEDDED = "embedded"
PLATFORM = "platform"
DUCKDB_LOCAL = "DuckDB (K2 in process), embedded lake"
DUCKDB_MINIO = "DuckDB (K2 in process), platform lake (MinIO)"


@dataclass(frozen=True, slots=True)
class Load:
    """One size loaded on one path: K2 and the limit."""

    path: str
    rows: int
    k2: IngestRun
    limit: IngestRun


@dataclass(frozen=True, slots=True)
class Streamed:
    """One size through Kafka: the producer's and the sink's pace, the sink's commits and files."""

    rows: int
    produce: Rate
    sink: Rate
    commits: int
    files: int


def _millions(rows: int) -> str:
    return f"{rows / 1e6:g}M"


def _load(path: str, settings: K2Settings, source: Path, rows: int) -> Load:
    """K2's load of ``rows`` trades and the limit's, each in a child process."""
    config = DATA_DIR / "scale" / "settings.json"
    config.touch(mode=0o600)
    try:
        # With its secrets: the child opens the same catalog and warehouse.
        config.write_text(
            json.dumps(
                settings.model_dump(exclude_defaults=True),
                default=lambda v: v.get_secret_value() if isinstance(v, SecretStr) else str(v),
            )
        )
        log(f"{TITLE}: {path}, {_millions(rows)} trades: K2")
        k2 = run_child("benchmarks.scale.load", source, str(rows), config)
        log(f"{TITLE}: {path}, {_millions(rows)} trades: plain pyarrow")
        limit = run_child("benchmarks.scale.load", source, str(rows), config, "--limit")
    finally:
        config.unlink()
    log(
        f"{TITLE}: K2 {k2.seconds:,.1f} s ({k2.rows_per_second / 1e3:,.0f} k rows/s), "
        f"pyarrow {limit.seconds:,.1f} s ({limit.rows_per_second / 1e3:,.0f} k rows/s)"
    )
    return Load(path, rows, k2, limit)


def _lake(rows: int) -> Path:
    return DATA_DIR / "scale" / f"lake-{_millions(rows)}"


@dataclass(frozen=True, slots=True)
class Queried:
    """The query series of one engine on one lake, by read."""

    engine: str
    rows: int
    series: dict[str, list[queries.Latencies]]


def _query(settings: K2Settings, engine_name: str, rows: int, sizes: Sizes) -> Queried:
    log(f"{TITLE}: queries on the {_millions(rows)} lake: {engine_name}")
    engine = QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)
    try:
        reader = queries.InProcess(engine)
        found = queries.measure(reader, contents(rows), QUERY_RUNS[sizes.name], QUERY_WARMUP, engine_name)
    finally:
        close_catalog(engine.catalog)
        engine.close()
    return Queried(engine_name, rows, found)


def _stream(settings: K2Settings, source: Path, rows: int) -> Streamed:
    """Produce the first ``rows`` trades with ``MarketProducer`` a source file at a time (each
    flushed), then run the sink into a fresh lake until all are committed.
    """
    produced: list[Rate] = []
    for number, table in enumerate(tables(source, rows)):
        if number == 0:
            topic = throughput.topic_of(settings.kafka, table)
            dead_letters = dlq_topic(table["exchange"][0].as_py(), settings.kafka.topic_prefix)
            ensure_topics(
                settings.kafka, {topic: settings.kafka.partitions, dead_letters: DEAD_LETTER_PARTITIONS}
            )
            log(f"{TITLE}: Kafka, {_millions(rows)} trades: MarketProducer")
        produced.append(throughput.produce_k2(settings.kafka, table))
    log(f"{TITLE}: Kafka, {_millions(rows)} trades: the sink")
    _, clock, commits = throughput.sink(settings, rows, max(throughput.TIMEOUT_S, rows / SLOWEST_SINK))
    return Streamed(
        rows,
        Rate(sum(r.messages for r in produced), sum(r.seconds for r in produced)),
        Rate(rows, clock.last_commit - clock.first_take),
        len(commits),
        sum(files for _, files in commits),
    )


@dataclass
class _Figures:
    loads: list[Load]
    streamed: list[Streamed]
    queried: list[Queried]
    generated_in: float | None
    services: dict[str, str]


def _on_platform(run: PlatformRun, source: Path, sizes: Sizes, figures: _Figures) -> None:
    for rows in ROWS[sizes.name]:
        settings = isolated(run.base, run.run_id, f"load{_millions(rows).lower()}")
        figures.loads.append(_load(PLATFORM, settings, source, rows))
    figures.queried.append(_query(settings, DUCKDB_MINIO, rows, sizes))
    for rows in KAFKA_ROWS[sizes.name]:
        settings = isolated(run.base, run.run_id, f"kafka{_millions(rows).lower()}")
        figures.streamed.append(_stream(settings, source, rows))


def _measure(sizes: Sizes) -> _Figures:
    sizes_rows = ROWS[sizes.name]
    source, generated_in = ensure_source(max(sizes_rows))
    figures = _Figures([], [], [], generated_in, {})
    for rows in sizes_rows:
        settings = K2Settings(data_dir=fresh_dir(_lake(rows)))
        figures.loads.append(_load(EMBEDDED, settings, source, rows))
        figures.queried.append(_query(settings, DUCKDB_LOCAL, rows, sizes))
        if rows != sizes_rows[-1]:
            shutil.rmtree(_lake(rows))  # only the largest lake is kept, for later looks
    with private_platform_run(TITLE, PLATFORM_SERVICES) as run:
        figures.services = run.services
        _on_platform(run, source, sizes, figures)
    return figures


def _per_cpu_second(run: IngestRun) -> float:
    """Rows per CPU-second of the loading process."""
    return run.rows / run.extra["cpu_seconds"]


def _curve(loads: list[Load]) -> Table:
    rows: list[tuple[str, ...]] = [
        (
            load.path,
            _millions(load.rows),
            f"{load.k2.seconds:,.1f}",
            f"{load.k2.rows_per_second / 1e3:,.0f} k",
            f"{load.limit.rows_per_second / 1e3:,.0f} k",
            f"{load.k2.extra['cpu_seconds']:,.1f}",
            f"{_per_cpu_second(load.k2) / 1e3:,.0f} k",
            f"{_per_cpu_second(load.limit) / 1e3:,.0f} k",
            f"{load.k2.output_bytes / MIB:,.0f}",
            f"{load.k2.output_bytes / load.rows:.1f} / {load.limit.output_bytes / load.rows:.1f}",
            f"{int(load.k2.extra['files']):,} / {int(load.limit.extra['files']):,}",
            f"{int(load.k2.extra['commits']):,}",
            f"{load.k2.peak_rss_bytes / MIB:,.0f} / {load.limit.peak_rss_bytes / MIB:,.0f}",
        )
        for load in loads
    ]
    return Table(
        "The cost curve: each load into a fresh lake, K2 beside plain pyarrow on the same rows",
        (
            "Path",
            "Trades",
            "K2 wall s",
            "K2 rows/s",
            "pyarrow rows/s",
            "K2 CPU s",
            "K2 rows/CPU-s",
            "pyarrow rows/CPU-s",
            "K2 MiB",
            "Bytes/row (K2 / pyarrow)",
            "Files (K2 / pyarrow)",
            "K2 commits",
            "Peak RSS MiB (K2 / pyarrow)",
        ),
        rows,
    )


def _latency_table(queried: list[Queried]) -> Table:
    rows: list[tuple[str, ...]] = [
        (
            label,
            found.engine,
            _millions(found.rows),
            str(one.clients),
            f"{len(one.ms)}",
            f"{one.p50:,.1f}",
            f"{one.p99:,.1f}",
            f"{one.rate:,.1f}",
            f"{one.rows / len(one.ms):,.0f}",
        )
        for label in queries.reads(contents(FILE_ROWS))
        for found in queried
        for one in found.series[label]
    ]
    return Table(
        "Query latency at each size (ms; requests/s over each series' wall time)",
        (
            "Read",
            "Engine, lake",
            "Trades",
            "Clients",
            "Requests",
            "p50 ms",
            "p99 ms",
            "Requests/s",
            "Rows/answer",
        ),
        rows,
    )


def _stream_table(streamed: list[Streamed]) -> Table:
    return Table(
        "Through Kafka: `MarketProducer` then the sink into a fresh lake (platform)",
        ("Trades", "Produce msg/s", "Produce s", "Sink msg/s", "Sink s", "Sink commits", "Data files"),
        [
            (
                _millions(s.rows),
                f"{s.produce.per_second / 1e3:,.1f} k",
                f"{s.produce.seconds:,.1f}",
                f"{s.sink.per_second / 1e3:,.1f} k",
                f"{s.sink.seconds:,.1f}",
                f"{s.commits:,}",
                f"{s.files:,}",
            )
            for s in streamed
        ],
    )


def _measures(figures: _Figures) -> list[Measure]:
    found: list[Measure] = []
    for path in (EMBEDDED, PLATFORM):
        loads = [load for load in figures.loads if load.path == path]
        if not loads:
            continue
        first, last = loads[0], loads[-1]
        size = f"{path}, {_millions(last.rows)} trades"
        found += [
            Measure(
                f"Load, {size}: rows/s",
                Unit.ROWS_PER_SECOND,
                last.k2.rows_per_second,
                last.limit.rows_per_second,
            ),
            Measure(f"Load, {size}: wall time", Unit.SECONDS, last.k2.seconds, last.limit.seconds),
            Measure(
                f"Load, {size}: Parquet bytes", Unit.BYTES, last.k2.output_bytes, last.limit.output_bytes
            ),
            Measure(
                f"Load, {size}: peak RSS of the loading process",
                Unit.BYTES,
                last.k2.peak_rss_bytes,
                last.limit.peak_rss_bytes,
            ),
            Measure(
                f"Load, {size}: CPU-seconds of the loading process",
                Unit.SECONDS,
                last.k2.extra["cpu_seconds"],
                last.limit.extra["cpu_seconds"],
            ),
            Measure(
                f"Load, {path}: rows per CPU-second at {_millions(last.rows)} / at {_millions(first.rows)} "
                "(1.00x: flat; limit: pyarrow's)",
                Unit.RATIO,
                _per_cpu_second(last.k2) / _per_cpu_second(first.k2),
                _per_cpu_second(last.limit) / _per_cpu_second(first.limit),
            ),
        ]
    for s in figures.streamed[-1:]:
        found += [
            Measure(
                f"Kafka, {_millions(s.rows)} trades: `MarketProducer` msg/s",
                Unit.MESSAGES_PER_SECOND,
                s.produce.per_second,
                None,
            ),
            Measure(
                f"Kafka, {_millions(s.rows)} trades: sink (consumed → committed) msg/s",
                Unit.MESSAGES_PER_SECOND,
                s.sink.per_second,
                None,
            ),
        ]
    return found


def _notes(figures: _Figures, sizes: Sizes) -> list[str]:
    generated = (
        f"generated in {figures.generated_in:,.0f} s by this run"
        if figures.generated_in is not None
        else "reused from an earlier run"
    )
    notes = [
        f"Input: the first N trades of `SyntheticMarket(symbols={SYMBOLS}, days={DAYS}, "
        f"trades_per_day={TRADES_PER_DAY:_})` in the generator's order (day by day; N = 1M is 20 "
        f"symbols of the first day, 10M the first two days), {generated}, kept in "
        f"`benchmarks/.data/scale/` as Parquet files of {FILE_ROWS:,} trades; trades only (the quotes "
        "table is not loaded at this scale). Each load reads the files it needs into memory one at a "
        "time; generating is outside every clock.",
        "K2's load is `Loader` + `LakeWriter` (a commit per `commit_rows` = 1M rows, duplicate check "
        "against the lake, sort and partition layout, then the 1-minute rollup refresh), in a child "
        "process of its own, into a fresh lake; the limit is `pyarrow.dataset.write_dataset` (zstd, "
        "pyarrow's defaults) of the same batches into the same storage, no catalog. Peak RSS is the "
        "loading process's `ru_maxrss`; on the "
        "platform path PostgreSQL's and MinIO's memory is not in it.",
        "The machine is 2 cores shared with other sessions running test suites while this ran: absolute "
        "figures are noisy, and the platform's services (JVMs, PostgreSQL, MinIO) share the same 2 cores as "
        "the load. Compare ratios measured side by side rather than absolute rates.",
    ]
    if figures.streamed:
        last = figures.streamed[-1]
        hundred = 100_000_000
        notes.append(
            f"100M trades through Kafka were not run (it would take tens of minutes here). Arithmetic, not a "
            f"measurement: at the {_millions(last.rows)} run's pace, 100M would take "
            f"{hundred / last.produce.per_second / 60:,.0f} min to produce and "
            f"{hundred / last.sink.per_second / 60:,.0f} min to sink with one sink, if the pace held."
        )
    return notes


def run(sizes: Sizes) -> Section:
    """Load, stream and query at every size; the section."""
    figures = _measure(sizes)
    largest = ROWS[sizes.name][-1]
    return Section(
        title=f"{TITLE}: {', '.join(map(_millions, ROWS[sizes.name]))} trades, one machine",
        description=(
            "The cost of K2 as the lake grows: trades loaded into a fresh lake at each size on the embedded "
            "path (SQLite catalog, local warehouse) and on the platform's storage (PostgreSQL JDBC catalog, "
            "MinIO), beside plain pyarrow writing the same rows; trades through Kafka (producer and sink); "
            f"and query latency at concurrency 1 and {queries.CLIENTS} on the {_millions(largest)} lakes. "
            "Run by `make bench-scale` (`python -m benchmarks.run --only scale`), not by the full "
            "`make bench`; this section carries its own date and machine."
        ),
        limit_name="pyarrow `write_dataset(zstd)` of the same rows",
        measures=_measures(figures),
        tables=[_curve(figures.loads), _stream_table(figures.streamed), _latency_table(figures.queried)],
        notes=_notes(figures, sizes),
    )
