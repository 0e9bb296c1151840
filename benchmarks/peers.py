"""Benchmark `peers`: K2 beside the field's specialist engines, QuestDB, chDB and DuckDB over a
native table, on five queries over the same rows in one run, every answer checked against K2's.

The synthetic lake's current snapshot is read once with pyarrow and loaded into each peer (load
times in a side table); K2 answers from the lake itself, in process and through ``k2 serve``.
The picks (symbol, venue-local day, session hour) are seeded and the same for every system, which
answer one after the other on each pick, after warm-up picks (see ``benchmarks.peer_runs``).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass

from benchmarks import raw_queries
from benchmarks.api_http import Client, serve
from benchmarks.api_latency import Lake, SymbolDay, pick_hour
from benchmarks.common import DATA_DIR, Sizes, log
from benchmarks.peer_chdb import ChDbPeer, session_class
from benchmarks.peer_data import Market, read_market
from benchmarks.peer_duckdb import DuckDbPeer
from benchmarks.peer_engine import DAY_ROWS, PAGE_ROWS, TOLERANCE, Loaded, Peer, Query, Window
from benchmarks.peer_k2 import InProcess
from benchmarks.peer_k2_api import Api, Scope
from benchmarks.peer_questdb import QuestDbPeer
from benchmarks.peer_report import K2_API, Column, best, figures_table, measures, variants_table
from benchmarks.peer_runs import Entry, Runs
from benchmarks.query_latency import ensure_lake
from benchmarks.questdb_server import questdb
from benchmarks.results import Section, Table, Unit
from benchmarks.synthetic_data import lake_dir
from k2.settings import ApiSettings, K2Settings

TITLE = "Peers: K2 beside QuestDB, chDB and DuckDB"
SEED = 31


@dataclass(frozen=True, slots=True)
class Loads:
    """What the peers loaded and how long each took."""

    rows: int
    trades: int
    quotes: int
    files: int
    read_seconds: float
    by_peer: dict[str, Loaded]

    def table(self) -> Table:
        """Each peer's load: how, seconds and rows per second, with and without writing the file
        it imports from.
        """
        rate = Unit.ROWS_PER_SECOND.show
        rows: list[tuple[str, ...]] = [
            (
                name,
                loaded.how,
                f"{self.rows:,}",
                f"{loaded.seconds:,.1f}",
                f"{loaded.file_seconds:,.1f}" if loaded.file_seconds else "—",
                rate(self.rows / loaded.seconds),
                rate(self.rows / (loaded.seconds - loaded.file_seconds)) if loaded.file_seconds else "—",
            )
            for name, loaded in self.by_peer.items()
        ]
        return Table(
            "Loading the same rows into each peer (trades + quotes)",
            ("Peer", "How", "Rows", "Seconds", "of which writing the file", "Rows/s", "Rows/s of the import"),
            rows,
        )


def load_peers(peers: list[Peer], lake: Lake) -> Loads:
    """Read the lake's rows and load them into every peer, one after the other."""
    market: Market = read_market(lake.engine)
    log(f"{TITLE}: read {market.rows:,} rows from {market.files} files in {market.seconds:.1f} s")
    by_peer = {}
    for peer in peers:
        log(f"{TITLE}: loading {peer.name}")
        by_peer[peer.name] = peer.load(market.trades, market.quotes)
        log(f"{TITLE}: {peer.name} loaded in {by_peer[peer.name].seconds:.1f} s")
    return Loads(
        market.rows, market.trades.num_rows, market.quotes.num_rows, market.files, market.seconds, by_peer
    )


def scope(lake: Lake) -> Scope:
    """Every symbol of the lake and its whole time range."""
    return Scope(
        tuple(sorted({d.symbol for d in lake.days})),
        min(d.start for d in lake.days),
        max(d.end for d in lake.days),
    )


def day_window(day: SymbolDay, limit: int) -> Window:
    """A symbol's whole venue-local day."""
    return Window(day.symbol, day.start, day.end, limit)


def measure(sizes: Sizes, lake: Lake, entries: list[Entry], refusal: str | None) -> Runs:
    """The five queries, each on its own seeded picks."""
    rng = random.Random(SEED)
    warm = sizes.warmup_runs
    runs = Runs()

    def hours(count: int) -> list[Window | None]:
        return [Window(*pick_hour(lake, rng), PAGE_ROWS) for _ in range(count)]

    def days(count: int, whole: bool) -> list[Window | None]:
        picks = [rng.choice(lake.days) for _ in range(count)]
        return [day_window(d, min(d.trades, DAY_ROWS) if whole else DAY_ROWS) for d in picks]

    log(f"{TITLE}: Q1 x {sizes.peer_query_runs}")
    runs.measure(Query.TICKS, entries, hours(warm + sizes.peer_query_runs), warm)
    log(f"{TITLE}: Q2 x {sizes.peer_query_runs}")
    runs.measure(Query.BARS, entries, days(warm + sizes.peer_query_runs, False), warm)
    log(f"{TITLE}: Q3 x {sizes.peer_bulk_runs}")
    every = entries if refusal is None else [e for e in entries if e.system != K2_API]
    runs.measure(Query.ALL_BARS, every, [None] * (1 + sizes.peer_bulk_runs), 1)
    log(f"{TITLE}: Q4 x {sizes.peer_day_runs}")
    runs.measure(Query.QUOTES, entries, days(warm + sizes.peer_day_runs, True), warm)
    log(f"{TITLE}: Q5 x {sizes.peer_day_runs}")
    runs.measure(Query.EXPORT, entries, days(warm + sizes.peer_day_runs, True), warm)
    return runs


def _checked(runs: Runs) -> str:
    what = (
        f"{runs.checked:,} answers compared with K2 in process's: Q1 and Q5 the same message ids in the "
        "same order, Q2 and Q3 the same bars (open, high, low, close, volume and trade count exact, "
        "VWAP within 1e-6; QuestDB's values are decimals, so exact too), Q4 the same bid and ask "
        "per trade"
    )
    if not runs.mismatches:
        return f"Checks: {what}. Every answer agreed."
    by_system = Counter(f"{m.query.short} {m.label}" for m in runs.mismatches)
    counts = ", ".join(f"{system}: {count}" for system, count in sorted(by_system.items()))
    examples = "; ".join(map(str, runs.mismatches[:3]))
    return f"Checks: {what}. **{len(runs.mismatches)} DISAGREED** ({counts}), e.g. {examples}."


def _protocols(runs: Runs, column: Column) -> str:
    chosen = [(query.short, best(runs, query, column)) for query in Query]
    faster = ", ".join(f"{short} {found[0]}" for short, found in chosen if found is not None)
    return f"{column.name}'s faster protocol by p50 (its column shows that one): {faster}."


def notes(runs: Runs, loads: Loads, peers: list[Peer], space: Scope, refusal: str | None) -> list[str]:
    """How each system was asked and loaded, and what the checks found."""
    api_q3 = (
        f"Q3 names all {len(space.symbols)} symbols and the lake's whole range, which the API takes"
        if refusal is None
        else f"Q3 through the API would ask for {refusal}, which it refuses: Q3 is measured for K2 in "
        "process only and judged by that"
    )
    return [
        _checked(runs),
        "K2 API: `k2 serve` (1 uvicorn worker) over the lake on a free loopback port, asked on one "
        "keep-alive connection. Q1 and Q5 `GET /v1/trades` (limit 5,000; Q5 the symbol-day's rows, "
        "at most the API's 100,000), Q2 and Q3 `POST /v1/aggregations` (metrics ohlcv, vwap and "
        f"trade_count, interval 1m; {api_q3}), Q4 `GET /v1/trades?with_quotes=true"
        f"&quote_tolerance_ms={TOLERANCE.total_seconds() * 1000:.0f}&limit=…`, each in JSON and with "
        "`format=arrow` (JSON / Arrow in the K2 API column; the ratio uses JSON for Q1-Q3 and Arrow "
        "for Q4-Q5). K2 in process: `k2.query.trades`, `k2.query.bars` and "
        "`k2.query.enrich.with_prevailing_quotes` on a `QueryEngine` over the same lake.",
        *(f"{peer.name}: {peer.describe()}" for peer in peers),
        f"Q4's tolerance is {TOLERANCE.total_seconds() * 1000:,.0f} ms (24 h, the most the API takes) "
        "so that it never cuts a quote that prevails: of the "
        f"{runs.quoted_trades:,} trades K2 joined (warm-up picks included), {runs.unquoted_trades:,} "
        "had no quote within it. The peers join the quotes from the day's start minus that tolerance, "
        "which is the same on this data (the checks compare every trade).",
        f"Loads come from files or Arrow in memory, not K2's ingest from CSV (the ingest benchmarks): "
        f"the lake's {loads.files} data files ({loads.trades:,} trades, {loads.quotes:,} quotes) were "
        f"read once with pyarrow in {loads.read_seconds:.1f} s, then loaded into each peer in turn.",
        "p99 is the nearest-rank 99th percentile, so over fewer than 100 runs it is their maximum. "
        "Each peer's figures are its fastest protocol's by p50; the fastest peer is the one with "
        "the best p50 (Q5: the best median rows/s), and both of its figures are shown.",
    ]


def run(sizes: Sizes) -> Section:
    """Load the peers, then time the five queries on every system."""
    session_class()  # fail before starting anything when chDB is missing
    exchange = ensure_lake(sizes)
    settings = K2Settings(data_dir=lake_dir(sizes))
    threads, memory_limit = settings.query.threads, settings.query.memory_limit
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    con = raw_queries.connect(threads, memory_limit)
    try:
        lake = Lake.open(f"{sizes.trades / 1e6:g}M trades", lake_dir(sizes), exchange, con)
    finally:
        con.close()
    space = scope(lake)
    refusal = space.refusal(ApiSettings())
    with ExitStack() as stack:
        stack.callback(lake.engine.close)
        server = stack.enter_context(questdb(run_id))
        peers: list[Peer] = []
        for make in (
            lambda: QuestDbPeer(server),
            lambda: ChDbPeer(DATA_DIR / f"chdb-{run_id}", threads),
            lambda: DuckDbPeer(threads, memory_limit),
        ):
            peer = make()
            stack.callback(peer.close)
            peers.append(peer)
        loads = load_peers(peers, lake)
        api = stack.enter_context(serve(lake.path, "peers"))
        client = stack.enter_context(Client(api.port))
        columns = [
            Column(K2_API, ("JSON", "Arrow"), peer=False),
            Column("K2 in process", ("",), peer=False),
            *(Column(p.name, tuple(p.engines()), peer=True) for p in peers),
        ]
        entries = [
            Entry(K2_API, "JSON", Api(client, False, space)),
            Entry(K2_API, "Arrow", Api(client, True, space)),
            Entry("K2 in process", "", InProcess(lake.engine)),
            *(Entry(p.name, variant, engine) for p in peers for variant, engine in p.engines().items()),
        ]
        runs = measure(sizes, lake, entries, refusal)
    questdb_column = next(c for c in columns if c.name == QuestDbPeer.name)
    return Section(
        title=f"{TITLE} ({loads.trades / 1e6:g}M trades)",
        description=(
            f"The synthetic lake `benchmarks/.data/lakes/{lake.path.name}` ({sizes.symbols} symbols x "
            f"{sizes.days} days, exchange {exchange}, {loads.trades:,} trades and {loads.quotes:,} "
            "quotes), the same rows loaded into each peer, the same seeded picks for every system: "
            "on each pick the systems answer one after the other, in a seeded random order that the "
            "next pick reverses (of any two, each goes first equally often: the K2 API's JSON and "
            "Arrow requests, like QuestDB's three protocols, take turns finding their server's caches "
            "warm), after "
            f"{sizes.warmup_runs} warm-up picks (Q3: 1). Q1 and Q2: {sizes.peer_query_runs} picks, Q3: "
            f"{sizes.peer_bulk_runs} runs, Q4 and Q5: {sizes.peer_day_runs} picks of a symbol-day. "
            "Latency is the wall time from sending the query to holding the whole answer (the last "
            "byte over HTTP, every row fetched over PG wire, the Arrow table in process); Q5's also "
            f"reads the answer as Arrow. K2 in process and DuckDB use {threads} threads, chDB "
            f"`max_threads` {threads}; QuestDB sizes its own pools. The limit is the fastest peer on "
            "each query, so K2 / limit reads K2's API against the best of the field."
        ),
        limit_name="fastest peer",
        measures=measures(runs, columns),
        tables=[
            figures_table(runs, columns, tail=False),
            figures_table(runs, columns, tail=True),
            variants_table(runs, questdb_column),
            variants_table(runs, columns[0]),
            loads.table(),
        ],
        notes=[*notes(runs, loads, peers, space, refusal), _protocols(runs, questdb_column)],
    )
