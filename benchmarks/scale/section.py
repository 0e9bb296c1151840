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
import math
import os
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from benchmarks.common import DATA_DIR, DOCS_FILE, FULL, GIB, MIB, Sizes, fresh_dir, log
from benchmarks.ingest.runs import IngestRun, run_child
from benchmarks.on_platform import PlatformRun, isolated, private_platform_run
from benchmarks.report import Machine, machine, render_separate, splice
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
from k2.query.reader import DuckDBReader, Reader
from k2.query.trino import TrinoReader
from k2.settings import K2Settings, KafkaSettings

TITLE = "Scale"
#: The benchmark's name in ``benchmarks.run``.
NAME = "scale"
#: Trades per load, smallest first; the query benchmarks read the largest lake.
ROWS = {"full": (1_000_000, 10_000_000, 100_000_000), "quick": (1_000_000, 2_000_000)}
#: Trades through Kafka (producer, then sink), smallest first.
KAFKA_ROWS = {"full": (1_000_000, 10_000_000), "quick": (1_000_000,)}
QUERY_RUNS = {"full": 20, "quick": 4}
#: Fewer for Trino, whose reads take seconds each on this machine.
TRINO_RUNS = {"full": 8, "quick": 4}
QUERY_WARMUP = 2
PLATFORM_SERVICES = ("postgres", "minio", "kafka", "registry", "trino")
#: The slowest sink pace the benchmark waits for before it calls the sink stuck.
SLOWEST_SINK = 5_000
HUNDRED_MILLION = 100_000_000
#: A cost that moved less than this factor between sizes "held".
FLAT = 1.25
CORES = os.cpu_count() or 1
#: The platform path runs the pyarrow limit only below this many trades (time).
PLATFORM_LIMIT_BELOW = HUNDRED_MILLION
EMBEDDED = "embedded"
PLATFORM = "platform"
DUCKDB_LOCAL = "DuckDB (K2 in process), embedded lake"
DUCKDB_MINIO = "DuckDB (K2 in process), platform lake (MinIO)"
TRINO = "Trino (one node, K2's TrinoReader), platform lake (MinIO)"


@dataclass(frozen=True, slots=True)
class Load:
    """One size loaded on one path: K2 and the limit (None: not run at this size)."""

    path: str
    rows: int
    k2: IngestRun
    limit: IngestRun | None


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


def _load(path: str, settings: K2Settings, source: Path, rows: int, *, limit: bool = True) -> Load:
    """K2's load of ``rows`` trades and (if ``limit``) the limit's, each in a child process."""
    config = DATA_DIR / "scale" / "settings.json"
    config.touch(mode=0o600)
    plain = None
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
        log(f"{TITLE}: K2 {k2.seconds:,.1f} s ({k2.rows_per_second / 1e3:,.0f} k rows/s)")
        if limit:
            log(f"{TITLE}: {path}, {_millions(rows)} trades: plain pyarrow")
            plain = run_child("benchmarks.scale.load", source, str(rows), config, "--limit")
            log(f"{TITLE}: pyarrow {plain.seconds:,.1f} s ({plain.rows_per_second / 1e3:,.0f} k rows/s)")
    finally:
        config.unlink()
    return Load(path, rows, k2, plain)


def _limit(load: Load) -> IngestRun:
    if load.limit is None:
        raise ValueError(f"no limit ran at {load.rows:,} rows")
    return load.limit


def _lake(rows: int) -> Path:
    return DATA_DIR / "scale" / f"lake-{_millions(rows)}"


@dataclass(frozen=True, slots=True)
class Queried:
    """The query series of one engine on one lake, by read."""

    engine: str
    rows: int
    series: dict[str, list[queries.Latencies]]


def _query(
    settings: K2Settings,
    engine_name: str,
    rows: int,
    sizes: Sizes,
    *,
    reader: Callable[[QueryEngine], Reader] = DuckDBReader,
    runs: dict[str, int] = QUERY_RUNS,
) -> Queried:
    log(f"{TITLE}: queries on the {_millions(rows)} lake: {engine_name}")
    engine = QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)
    try:
        lake = contents(rows)
        found = queries.measure(reader(engine), lake, runs[sizes.name], QUERY_WARMUP, engine_name)
    finally:
        close_catalog(engine.catalog)
        engine.close()
    return Queried(engine_name, rows, found)


def _trino(settings: K2Settings) -> Callable[[QueryEngine], Reader]:
    def reader(engine: QueryEngine) -> Reader:
        return TrinoReader(engine, settings.trino_url, settings.lake.catalog_name)

    return reader


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
        if rows == ROWS[sizes.name][-1]:
            # The catalog Trino was started on: the largest lake is the one it reads.
            settings = settings.model_copy(
                update={"lake": settings.lake.model_copy(update={"catalog_name": run.base.lake.catalog_name})}
            )
        # pyarrow into MinIO at the largest size would add ten minutes here: its ratio is read at the others.
        figures.loads.append(_load(PLATFORM, settings, source, rows, limit=rows < PLATFORM_LIMIT_BELOW))
    figures.queried.append(_query(settings, DUCKDB_MINIO, rows, sizes))
    figures.queried.append(_query(settings, TRINO, rows, sizes, reader=_trino(settings), runs=TRINO_RUNS))
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


def _pair(load: Load, of: Callable[[IngestRun], str]) -> str:
    """A cell of K2's figure and the limit's."""
    return f"{of(load.k2)} / {'not run' if load.limit is None else of(load.limit)}"


def _curve(loads: list[Load]) -> Table:
    rows: list[tuple[str, ...]] = [
        (
            load.path,
            _millions(load.rows),
            f"{load.k2.seconds:,.1f}",
            _pair(load, lambda r: f"{r.rows_per_second / 1e3:,.0f} k"),
            f"{load.k2.extra['cpu_seconds']:,.1f}",
            _pair(load, lambda r: f"{_per_cpu_second(r) / 1e3:,.0f} k"),
            f"{load.k2.output_bytes / MIB:,.0f}",
            _pair(load, lambda r: f"{r.output_bytes / r.rows:.1f}"),
            _pair(load, lambda r: f"{int(r.extra['files']):,}"),
            f"{int(load.k2.extra['commits']):,}",
            _pair(load, lambda r: f"{r.peak_rss_bytes / MIB:,.0f}"),
        )
        for load in loads
    ]
    return Table(
        "The cost curve: each load into a fresh lake, K2 beside plain pyarrow on the same rows",
        (
            "Path",
            "Trades",
            "K2 wall s",
            "Rows/s (K2 / pyarrow)",
            "K2 CPU s",
            "Rows per CPU-s (K2 / pyarrow)",
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
        figures_of: list[tuple[str, Unit, Callable[[IngestRun], float]]] = [
            ("rows/s", Unit.ROWS_PER_SECOND, lambda r: r.rows_per_second),
            ("wall time", Unit.SECONDS, lambda r: r.seconds),
            ("Parquet bytes", Unit.BYTES, lambda r: r.output_bytes),
            ("peak RSS of the loading process", Unit.BYTES, lambda r: r.peak_rss_bytes),
            ("CPU-seconds of the loading process", Unit.SECONDS, lambda r: r.extra["cpu_seconds"]),
        ]
        found += [
            Measure(
                f"Load, {size}: {what}", unit, of(last.k2), None if last.limit is None else of(last.limit)
            )
            for what, unit, of in figures_of
        ]
        flat = [load for load in (first, last) if load.limit is not None]
        found.append(
            Measure(
                f"Load, {path}: rows per CPU-second at {_millions(last.rows)} / at {_millions(first.rows)} "
                "(1.00x: flat; limit: pyarrow's, over the sizes it ran)",
                Unit.RATIO,
                _per_cpu_second(last.k2) / _per_cpu_second(first.k2),
                _per_cpu_second(_limit(flat[-1])) / _per_cpu_second(_limit(flat[0])),
            )
        )
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
        "loading process's `ru_maxrss` (on the platform path PostgreSQL's and MinIO's memory is not in "
        "it); CPU seconds are the loading process's user + system time over the load, all threads.",
        "The machine is 2 cores shared with other sessions running test suites while this ran: absolute "
        "figures are noisy, and the platform's services (JVMs, PostgreSQL, MinIO) share the same 2 cores as "
        "the load. Compare ratios measured side by side rather than absolute rates.",
    ]
    notes.append(
        "The platform, of this run's own on free ports: "
        + "; ".join(f"{name} ({detail})" for name, detail in figures.services.items())
        + f". Kafka topics of {KafkaSettings().partitions} partitions; one sink in one process, the "
        "producer before it (not at the same time)."
    )
    if figures.streamed:
        last = figures.streamed[-1]
        notes.append(
            f"{_millions(HUNDRED_MILLION)} trades through Kafka were not run (tens of minutes more on this "
            f"machine). Arithmetic, not a measurement: at the {_millions(last.rows)} run's pace, they would "
            f"take {HUNDRED_MILLION / last.produce.per_second / 60:,.0f} min to produce and "
            f"{HUNDRED_MILLION / last.sink.per_second / 60:,.0f} min to sink with one sink, if the pace held."
        )
    notes.append(
        "Trino: Trino 476 as one node (coordinator and worker in one JVM) on the same 2 cores, started with "
        "the private platform over its JDBC catalog and MinIO; each read is K2's `TrinoReader` (what the "
        "API and CLI use under `K2_QUERY_ENGINE=trino`) sending SQL to it. One node measures what a Trino "
        "query costs here, not Trino's scale-out, which comes from adding workers on other machines."
    )
    return notes + _one_machine(figures)


def _grew(before: float, after: float) -> str:
    """How a cost moved between two sizes, in words and as a ratio."""
    ratio = after / before
    if ratio <= 1 / FLAT:
        return f"fell ({ratio:.2f}x)"
    if ratio < FLAT:
        return f"held ({ratio:.2f}x)"
    return f"grew {ratio:.2f}x"


def _one_machine(figures: _Figures) -> list[str]:
    """Where one machine stops, in the measured figures' own terms."""
    embedded = [load for load in figures.loads if load.path == EMBEDDED]
    first, before, last = embedded[0], embedded[-2], embedded[-1]
    per_cpu = _per_cpu_second(last.k2)
    per_row = last.k2.output_bytes / last.rows
    found = [
        f"**Where one machine stops: ingest.** From {_millions(first.rows)} to {_millions(last.rows)} "
        f"trades, K2's CPU time per row {_grew(1 / _per_cpu_second(first.k2), 1 / per_cpu)}: "
        f"{_per_cpu_second(first.k2) / 1e3:,.0f} k, then {per_cpu / 1e3:,.0f} k rows per CPU-second; its "
        f"bytes per trade {_grew(first.k2.output_bytes / first.rows, per_row)}, at {per_row:.1f}. The "
        f"loading process's peak RSS {_grew(before.k2.peak_rss_bytes, last.k2.peak_rss_bytes)} from "
        f"{_millions(before.rows)} to {_millions(last.rows)}: {before.k2.peak_rss_bytes / MIB:,.0f} MiB, "
        f"then {last.k2.peak_rss_bytes / MIB:,.0f} MiB (a load holds a `commit_rows` batch, not the lake). "
        f"So what bounds one machine is its disk and its cores, not the lake's size: at {per_row:.0f} "
        f"bytes per trade a billion trades take {per_row * 1e9 / GIB:,.0f} GiB, and with all {CORES} cores "
        f"on it K2 would load about {CORES * per_cpu / 1e3:,.0f} k trades/s ({CORES} x rows per "
        "CPU-second); wall-clock rates here are lower because the cores were shared.",
    ]
    if figures.streamed:
        sink = figures.streamed[-1].sink.per_second
        found.append(
            f"**Streaming.** One sink drained {sink / 1e3:,.0f} k msg/s here, on cores it shares with the "
            "broker, the registry, PostgreSQL and MinIO. The brief's 1M msg/s is "
            f"{math.ceil(1e6 / sink)} times that: it takes more Kafka partitions over more brokers and "
            "several sinks in one consumer group on machines of their own (issue 13's three-broker Kafka and "
            "several-sinks work), not a bigger single process."
        )
    local = [q for q in figures.queried if q.engine == DUCKDB_LOCAL]
    if len(local) > 1:
        before_q, large = local[-2], local[-1]
        lines = []
        for label, found_large in large.series.items():
            one, eight = found_large[0], found_large[-1]
            sizes = ", ".join(f"{q.series[label][0].p50:,.1f} ms at {_millions(q.rows)}" for q in local)
            lines.append(
                f"{label}: p50 {sizes}, so it {_grew(before_q.series[label][0].p50, one.p50)} over the "
                f"last {large.rows // before_q.rows}x of the lake; {eight.clients} callers got "
                f"{eight.rate / one.rate:.1f}x the requests/s of one"
            )
        on_minio = {q.engine: q for q in figures.queried if q.rows == large.rows and q.engine != DUCKDB_LOCAL}
        if DUCKDB_MINIO in on_minio and TRINO in on_minio:
            duck, trino = on_minio[DUCKDB_MINIO].series, on_minio[TRINO].series
            lines.append(
                "on the platform lake, Trino's p50 against DuckDB's in process: "
                + ", ".join(
                    f"{trino[label][0].p50:,.0f} and {duck[label][0].p50:,.0f} ms ({label.split(':')[0]})"
                    for label in large.series
                )
                + (
                    " (on one node sharing these 2 cores Trino is the slower for every read: it takes over "
                    "with workers of its own, beyond this machine, not on it)"
                    if all(trino[label][0].p50 > duck[label][0].p50 for label in large.series)
                    else ""
                )
            )
        found.append(
            "**Queries** (DuckDB in process, embedded lake, unless said). "
            + "; ".join(lines)
            + (
                f". From {_millions(before_q.rows)} on, each read covers the same amount of data at every "
                "size (at 1M a day holds 20 symbols, not 100)"
                if before_q.rows >= SYMBOLS * TRADES_PER_DAY
                else ""
            )
            + ". Where a read's time grows with the lake is not broken down here (planning over more "
            "manifests and files is the likely part). Eight callers share this "
            f"machine's {CORES} cores, so they cannot get much more than {CORES}x the requests/s of one. "
            "More concurrent callers, or more data per read than one machine answers in time, are where a "
            "distributed engine takes over: Trino (issue 13), a coordinator and workers reading the same "
            "Iceberg tables in MinIO or S3 while K2 keeps writing them."
        )
    return found


@dataclass(frozen=True, slots=True)
class Kept:
    """A run's figures, where it ran, when it ended and how long it took."""

    figures: _Figures
    where: Machine
    ended: datetime
    seconds: float


def _kept(sizes: Sizes) -> Path:
    return DATA_DIR / "scale" / f"figures-{sizes.name}.pickle"


def run(sizes: Sizes) -> Section:
    """Load, stream and query at every size; the section. The figures are kept (see :func:`main`)."""
    where, started = machine(), time.perf_counter()
    figures = _measure(sizes)
    kept = Kept(figures, where, datetime.now(UTC), time.perf_counter() - started)
    _kept(sizes).write_bytes(pickle.dumps(kept))
    return section_of(figures, sizes)


def main() -> None:
    """Write the section of the last full-size run into ``docs/benchmarks.md`` again from its kept
    figures, without measuring: for a change to how the section is written.

        python -m benchmarks.scale.section
    """
    kept: Kept = pickle.loads(_kept(FULL).read_bytes())
    section = section_of(kept.figures, FULL)
    section.seconds = kept.seconds
    section.notes.append(
        f"The text of this section was written again on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the "
        "run's kept figures (`python -m benchmarks.scale.section`), without measuring: the figures are "
        "the run's."
    )
    block = render_separate(NAME, section, FULL, kept.where, kept.ended)
    DOCS_FILE.write_text(splice(DOCS_FILE.read_text(), NAME, block))
    log(f"rewrote the {NAME} section of {DOCS_FILE.name} from {_kept(FULL).name}")


def section_of(figures: _Figures, sizes: Sizes) -> Section:
    """The section of ``figures``."""
    largest = ROWS[sizes.name][-1]
    return Section(
        title=f"{TITLE}: {', '.join(map(_millions, ROWS[sizes.name]))} trades, one machine",
        description=(
            "The cost of K2 as the lake grows: trades loaded into a fresh lake at each size on the embedded "
            "path (SQLite catalog, local warehouse) and on the platform's storage (PostgreSQL JDBC catalog, "
            "MinIO), beside plain pyarrow writing the same rows; trades through Kafka (producer and sink); "
            f"and query latency at concurrency 1 and {queries.CLIENTS}: DuckDB in process on the embedded "
            f"lake of every size, DuckDB and Trino on the {_millions(largest)} platform lake. "
            "Run by `make bench-scale` (`python -m benchmarks.run --only scale`), not by the full "
            "`make bench`; this section carries its own date and machine."
        ),
        limit_name="pyarrow `write_dataset(zstd)` of the same rows",
        measures=_measures(figures),
        tables=[_curve(figures.loads), _stream_table(figures.streamed), _latency_table(figures.queried)],
        notes=_notes(figures, sizes),
    )


if __name__ == "__main__":
    main()
