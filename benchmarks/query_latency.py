"""Benchmark 3: latency of K2's queries over the synthetic market's trades, beside the same
queries written by hand in DuckDB over all the table's Parquet files (no Iceberg planning).

Each run picks its symbol, day and hour at random (seeded), and K2 and the limit run the same
picks alternately, on warm caches, after a few unmeasured warm-up runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from benchmarks import raw_queries
from benchmarks.common import Sizes, log, percentile, timed_ms
from benchmarks.ingest import run_child
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.synthetic_data import lake_dir, lake_exchange, mark_lake, market
from k2.domain.bars import Interval
from k2.domain.venues import Venue, venue
from k2.lake.catalog import open_catalog
from k2.lake.tables import TRADES
from k2.query import BarQuery, QueryEngine, TickQuery, bars, daily_summary, trades
from k2.query.engine import Selection
from k2.settings import K2Settings

TITLE = "Query latency"
PAGE_ROWS = 5000
TICK_TARGET = Target(15, Unit.MILLISECONDS)
BARS_TARGET = Target(1000, Unit.MILLISECONDS)
SUMMARY_FIELDS = ("open", "high", "low", "close", "volume", "trade_count", "vwap")
BAR_COLUMNS = [
    "symbol",
    "exchange",
    "interval_start",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "trade_count",
    "vwap",
]


@dataclass
class Series:
    """Latencies in milliseconds of K2 and of the limit for one query."""

    label: str
    target: Target | None
    k2: list[float] = field(default_factory=list)
    limit: list[float] = field(default_factory=list)

    def measures(self) -> list[Measure]:
        """p50 and p99 of K2 beside the limit; the target applies to both."""
        runs = f"{len(self.k2)} runs"
        return [
            Measure(
                f"{self.label}, {runs}: {name}",
                Unit.MILLISECONDS,
                percentile(self.k2, q),
                percentile(self.limit, q),
                self.target,
            )
            for name, q in (("p50", 0.5), ("p99", 0.99))
        ]


def ensure_lake(sizes: Sizes) -> str:
    """The exchange of the synthetic lake, loaded straight from the generator if missing."""
    exchange = lake_exchange(sizes)
    if exchange is None:
        log(f"{TITLE}: no lake left by the ingest benchmark; loading the synthetic market")
        run_child(
            "benchmarks.load_k2",
            lake_dir(sizes),
            "--synthetic",
            str(sizes.symbols),
            str(sizes.days),
            str(sizes.trades_per_day),
        )
        exchange = "SYN"
        mark_lake(sizes, exchange)
    return exchange


def session_hour(rng: random.Random, days: list[date], v: Venue) -> datetime:
    """The UTC start of a random whole venue-local hour of the trading session."""
    day = rng.choice(days)
    hour = rng.randrange(v.session_open.hour, v.session_close.hour)
    return datetime.combine(day, time(hour), tzinfo=v.zone).astimezone(UTC)


def repeat(runs: int, warmup: int, step: Callable[[bool], None]) -> None:
    """Call ``step(measured)`` ``warmup`` times unmeasured, then ``runs`` times measured."""
    for i in range(warmup + runs):
        step(i >= warmup)


class Bench:
    """The engine, the raw DuckDB database and the picks of one run of the benchmark."""

    def __init__(self, sizes: Sizes, exchange: str) -> None:
        self.sizes = sizes
        self.exchange = exchange
        self.venue = venue(exchange)
        self.market = market(sizes)
        settings = K2Settings(data_dir=lake_dir(sizes))
        self.engine = QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)
        self.con = raw_queries.connect(settings.query.threads, settings.query.memory_limit)
        self.paths = self.engine.scan(TRADES).paths
        self.rng = random.Random(11)
        self.mismatches: list[str] = []

    def trade_count(self) -> int:
        """Trades in the table (from Parquet metadata)."""
        rows = self.con.sql("SELECT count(*) FROM read_parquet($paths)", params={"paths": self.paths})
        return int(rows.fetchall()[0][0])

    def ticks(self) -> tuple[Series, Table]:
        """One symbol, one hour, first page of 5000 trades; and where K2's time goes."""
        series = Series(f"Trades of 1 symbol x 1 hour, first {PAGE_ROWS:,} rows", TICK_TARGET)
        plan: list[float] = []
        pruned: list[float] = []
        planned_files: list[int] = []

        def step(measured: bool) -> None:
            symbol = self.rng.choice(self.market.symbols)
            start = session_hour(self.rng, self.market.days, self.venue)
            end = start + timedelta(hours=1)
            page, k2_ms = timed_ms(
                lambda: trades(
                    self.engine, TickQuery(symbols=(symbol,), start=start, end=end, limit=PAGE_ROWS)
                )
            )
            raw, raw_ms = timed_ms(
                lambda: raw_queries.ticks(
                    self.con, self.paths, symbol=symbol, start=start, end=end, limit=PAGE_ROWS
                )
            )
            scan, plan_ms = timed_ms(lambda: self.engine.scan(TRADES, Selection((symbol,), None, start, end)))
            _, pruned_ms = timed_ms(
                lambda: raw_queries.ticks(
                    self.con, scan.paths, symbol=symbol, start=start, end=end, limit=PAGE_ROWS
                )
            )
            if page.rows["message_id"].to_pylist() != raw["message_id"].to_pylist():
                self.mismatches.append(f"trades of {symbol} from {start:%Y-%m-%d %H:%M} UTC")
            if measured:
                series.k2.append(k2_ms)
                series.limit.append(raw_ms)
                plan.append(plan_ms)
                pruned.append(pruned_ms)
                planned_files.append(len(scan.paths))

        repeat(self.sizes.tick_query_runs, self.sizes.warmup_runs, step)
        mean_files = sum(planned_files) / len(planned_files)
        cells = [
            ("K2 `trades()`", series.k2),
            ("  Iceberg planning alone (`engine.scan` with the query's filter)", plan),
            (f"  raw DuckDB over the planned files only (mean {mean_files:.1f} files)", pruned),
            (f"Raw DuckDB over all {len(self.paths)} files (the limit)", series.limit),
        ]
        rows: list[tuple[str, ...]] = [
            (label, f"{percentile(v, 0.5):.1f}", f"{percentile(v, 0.99):.1f}") for label, v in cells
        ]
        return series, Table("Where the one-hour query's time goes", ("Step", "p50 ms", "p99 ms"), rows)

    def minute_bars(self) -> Series:
        """One-minute bars of every symbol over all trades."""
        series = Series("1-minute bars, all symbols, all trades", BARS_TARGET)

        def step(measured: bool) -> None:
            k2, k2_ms = timed_ms(lambda: bars(self.engine, BarQuery(Interval.parse("1m"))))
            raw, raw_ms = timed_ms(lambda: raw_queries.minute_bars(self.con, self.paths))
            expected = k2.select(BAR_COLUMNS)
            if not expected.equals(raw.select(BAR_COLUMNS).cast(expected.schema)):
                self.mismatches.append("1-minute bars")
            if measured:
                series.k2.append(k2_ms)
                series.limit.append(raw_ms)

        repeat(self.sizes.bar_query_runs, 1, step)
        return series

    def summaries(self) -> Series:
        """``daily_summary`` of one symbol on one venue-local day."""
        series = Series("`daily_summary`, 1 symbol x 1 day", None)

        def step(measured: bool) -> None:
            symbol = self.rng.choice(self.market.symbols)
            day = self.rng.choice(self.market.days)
            k2, k2_ms = timed_ms(lambda: daily_summary(self.engine, symbol, day, self.exchange))
            raw, raw_ms = timed_ms(
                lambda: raw_queries.day_summary(
                    self.con, self.paths, symbol=symbol, exchange=self.exchange, day=day, zone=self.venue.zone
                )
            )
            got = raw.to_pylist()[0]
            if k2 is None or [getattr(k2, f) for f in SUMMARY_FIELDS] != [got[f] for f in SUMMARY_FIELDS]:
                self.mismatches.append(f"daily summary of {symbol} on {day}")
            if measured:
                series.k2.append(k2_ms)
                series.limit.append(raw_ms)

        repeat(self.sizes.summary_runs, self.sizes.warmup_runs, step)
        return series


def run(sizes: Sizes) -> Section:
    """Time the three queries."""
    exchange = ensure_lake(sizes)
    bench = Bench(sizes, exchange)
    log(f"{TITLE}: one symbol, one hour x {sizes.tick_query_runs}")
    ticks, breakdown = bench.ticks()
    log(f"{TITLE}: 1-minute bars x {sizes.bar_query_runs}")
    minute = bench.minute_bars()
    log(f"{TITLE}: daily summary x {sizes.summary_runs}")
    summary = bench.summaries()
    count = bench.trade_count()
    bench.engine.close()
    bench.con.close()
    checked = (
        "K2 and the limit returned the same rows in every run."
        if not bench.mismatches
        else f"K2 and the limit DISAGREED on {len(bench.mismatches)} runs, e.g. {bench.mismatches[0]}."
    )
    return Section(
        title=f"{TITLE} ({count / 1e6:g}M trades)",
        description=(
            f"The trades table of `benchmarks/.data/lakes/{lake_dir(sizes).name}` ({sizes.symbols} "
            f"symbols x {sizes.days} days, exchange {exchange}, {len(bench.paths)} Parquet files), "
            f"queried in process through `k2.query` on a `QueryEngine` with the default settings "
            f"({bench.engine.settings.threads} DuckDB threads). The limit is the same query in DuckDB "
            "(same threads and memory limit) over `read_parquet(<all the table's files>)`."
        ),
        limit_name="hand-written DuckDB over all the table's files",
        measures=[*ticks.measures(), *minute.measures(), *summary.measures()],
        tables=[breakdown],
        notes=[
            checked,
            "Latency is the wall time of the call, Arrow result included; p99 is the nearest-rank "
            f"99th percentile, so over {sizes.bar_query_runs} runs it is their maximum.",
        ],
    )
