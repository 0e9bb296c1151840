"""Benchmark 3: latency of K2's queries over the synthetic market's trades, beside the same
queries written by hand in DuckDB over all the table's Parquet files (no Iceberg planning).

Each run picks its symbol, day and hour at random (seeded), and K2 and the limit run the same
picks alternately, on warm caches, after a few unmeasured warm-up runs. The 1-minute bars run on
two engines: the default settings, which answer from the 1-minute rollup (``bars_1m``) when it
reflects the snapshot read, and ``QuerySettings(rollup=False)``, which computes them from the
trades.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks import raw_queries
from benchmarks.common import Sizes, log, percentile, timed_ms
from benchmarks.ingest.runs import run_child
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.synthetic_data import lake_dir, lake_exchange, mark_lake, market
from k2.domain.bars import Interval
from k2.domain.venues import Venue, venue
from k2.lake.catalog import open_catalog
from k2.lake.rollup import refresh
from k2.lake.tables import TRADES
from k2.query import BarQuery, QueryEngine, TickQuery, bars, daily_summary, trades
from k2.query.engine import Selection
from k2.settings import K2Settings

TITLE = "Query latency"
PAGE_ROWS = 5000
TICK_TARGET = Target(15, Unit.MILLISECONDS)
BARS_TARGET = Target(1000, Unit.MILLISECONDS)
SUMMARY_FIELDS = ("open", "high", "low", "close", "volume", "trade_count", "vwap")
VWAP_TOLERANCE = 1e-6
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
    """The exchange of the synthetic lake, loaded straight from the generator if missing, with
    its 1-minute rollup brought up to date (as ``k2 lake rollup`` does for a lake written before
    the rollup existed; loads keep it up to date).
    """
    exchange = lake_exchange(sizes)
    if exchange is None:
        log(f"{TITLE}: no lake left by the ingest benchmark; loading the synthetic market")
        run_child(
            "benchmarks.ingest.load_k2",
            lake_dir(sizes),
            "--synthetic",
            str(sizes.symbols),
            str(sizes.days),
            str(sizes.trades_per_day),
        )
        exchange = "SYN"
        mark_lake(sizes, exchange)
    settings = K2Settings(data_dir=lake_dir(sizes))
    engine = QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)
    try:
        if rollup_snapshot(engine) is None:
            log(f"{TITLE}: bringing the lake's 1-minute rollup up to date")
            refresh(engine.catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    finally:
        engine.close()
    return exchange


def rollup_snapshot(engine: QueryEngine) -> int | None:
    """The rollup snapshot reflecting the trades' current snapshot; None when there is none."""
    trades_table = engine.table(TRADES)
    current = trades_table.current_snapshot()
    return None if current is None else engine.rollup_snapshot(trades_table, current.snapshot_id)


def rollup_state(engine: QueryEngine) -> str:
    """Where ``engine``'s whole-minute bars of the current snapshot come from, for the report."""
    reflecting = rollup_snapshot(engine) if engine.settings.rollup else None
    if reflecting is None:
        return "K2 computes bars from the trades: no 1-minute rollup reflects their current snapshot"
    return (
        f"the 1-minute rollup (`bars_1m` snapshot {reflecting}) reflects the trades' current snapshot, "
        "so K2's default settings answer whole-minute bars from it"
    )


def session_hour(rng: random.Random, days: list[date], v: Venue) -> datetime:
    """The UTC start of a random whole venue-local hour of the trading session."""
    day = rng.choice(days)
    hour = rng.randrange(v.session_open.hour, v.session_close.hour)
    return datetime.combine(day, time(hour), tzinfo=v.zone).astimezone(UTC)


def bars_agree(got: pa.Table, raw: pa.Table) -> bool:
    """The same bars, VWAP within ``VWAP_TOLERANCE`` (K2 sums it in floating point, the limit in
    exact decimals, so the 8th decimal may differ where it rounds).
    """
    exact = [c for c in BAR_COLUMNS if c != "vwap"]
    expected = got.select(exact)
    if not expected.equals(raw.select(exact).cast(expected.schema)):
        return False
    gap = pc.max(pc.abs(pc.subtract(got["vwap"].cast(pa.float64()), raw["vwap"].cast(pa.float64()))))
    return gap.as_py() is None or gap.as_py() <= VWAP_TOLERANCE


def latency_rows(cells: list[tuple[str, list[float]]]) -> list[tuple[str, ...]]:
    """A breakdown table's rows: each step's label, p50 and p99 in milliseconds."""
    return [(label, f"{percentile(v, 0.5):.1f}", f"{percentile(v, 0.99):.1f}") for label, v in cells]


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
        on_the_fly = settings.query.model_copy(update={"rollup": False})
        self.on_the_fly = QueryEngine(open_catalog(settings), settings.lake.namespace, on_the_fly)
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
        series = Series(
            f"Trades of 1 symbol x 1 hour, first {PAGE_ROWS:,} rows, row groups decoded on first use",
            TICK_TARGET,
        )
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
        return series, Table(
            "Where the one-hour query's time goes", ("Step", "p50 ms", "p99 ms"), latency_rows(cells)
        )

    def minute_bars(self) -> tuple[Series, Series]:
        """One-minute bars of every symbol over all trades: with the default settings (from the
        rollup when it reflects the snapshot) and on the fly from the trades, each beside the limit.
        """
        source = "from the 1-minute rollup" if rollup_snapshot(self.engine) is not None else "from the trades"
        default = Series(f"1-minute bars, all symbols, all trades, default settings ({source})", BARS_TARGET)
        fly = Series(
            "1-minute bars, all symbols, all trades, on the fly from the trades (rollup off)", BARS_TARGET
        )
        query = BarQuery(Interval.parse("1m"))

        def step(measured: bool) -> None:
            k2, k2_ms = timed_ms(lambda: bars(self.engine, query))
            computed, fly_ms = timed_ms(lambda: bars(self.on_the_fly, query))
            raw, raw_ms = timed_ms(lambda: raw_queries.minute_bars(self.con, self.paths))
            for name, got in (("1-minute bars", k2), ("1-minute bars on the fly", computed)):
                if not bars_agree(got, raw):
                    self.mismatches.append(name)
            if measured:
                default.k2.append(k2_ms)
                fly.k2.append(fly_ms)
                default.limit.append(raw_ms)
                fly.limit.append(raw_ms)

        repeat(self.sizes.bar_query_runs, 1, step)
        return default, fly

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
    log(f"{TITLE}: 1-minute bars x {sizes.bar_query_runs}, from the rollup and on the fly")
    minute, fly = bench.minute_bars()
    log(f"{TITLE}: daily summary x {sizes.summary_runs}")
    summary = bench.summaries()
    count = bench.trade_count()
    rollup = rollup_state(bench.engine)
    bench.engine.close()
    bench.on_the_fly.close()
    bench.con.close()
    checked = (
        "K2 and the limit returned the same rows in every run (bars: VWAP within 1e-6)."
        if not bench.mismatches
        else f"K2 and the limit DISAGREED on {len(bench.mismatches)} runs, e.g. {bench.mismatches[0]}."
    )
    return Section(
        title=f"{TITLE} ({count / 1e6:g}M trades)",
        description=(
            f"The trades table of `benchmarks/.data/lakes/{lake_dir(sizes).name}` ({sizes.symbols} "
            f"symbols x {sizes.days} days, exchange {exchange}, {len(bench.paths)} Parquet files), "
            f"queried in process through `k2.query` on a `QueryEngine` with the default settings "
            f"({bench.engine.settings.threads} DuckDB threads; {rollup}), and for the 1-minute bars "
            "also on a second `QueryEngine` with `QuerySettings(rollup=False)`, which computes them "
            "from the trades. The limit is the same query in DuckDB "
            "(same threads and memory limit) over `read_parquet(<all the table's files>)`."
        ),
        limit_name="hand-written DuckDB over all the table's files",
        measures=[*ticks.measures(), *minute.measures(), *fly.measures(), *summary.measures()],
        tables=[breakdown],
        notes=[
            checked,
            "The one-hour reads start on an engine that has decoded nothing: a pick whose row groups "
            "no earlier pick read decodes them first (K2's first-touch cost; the limit reads Parquet "
            "every time). The peers section times K2 after its row groups are decoded, as the peers "
            "hold their tables in memory.",
            "Latency is the wall time of the call, Arrow result included; p99 is the nearest-rank "
            f"99th percentile, so over {sizes.bar_query_runs} runs it is their maximum.",
        ],
    )
