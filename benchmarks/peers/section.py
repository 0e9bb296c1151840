"""Benchmark `peers`: K2 beside the field's specialist engines, QuestDB, chDB and DuckDB over a
native table, on the same queries over the same rows in one run, every answer checked against K2's.

The synthetic lake's current snapshot is read once with pyarrow and loaded into each peer (load
times in a side table); K2 answers from the lake itself, in process and through ``k2 serve``,
each twice for the bars (Q2, Q3): from the 1-minute rollup (the default) and on the fly from the
trades (``QuerySettings(rollup=False)``, a second server with ``K2_QUERY_ROLLUP=false``).
The picks (symbol, venue-local day, session hour) are seeded, distinct within a query as far as
they go (the API's answer cache serves a request it has seen), and the same for every system,
which answer one after the other on each pick, after warm-up picks (see ``benchmarks.peers.runs``);
Q1 and Q2 are then asked again on the same picks. Q4 full joins every trade of the table; time
travel reads Q1 as of an older snapshot (``benchmarks.peers.time_travel``).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from benchmarks import raw_queries
from benchmarks.api.latency import Lake
from benchmarks.api.serving import CacheCounts, Client, cache_counts, iso, serve, warm_row_groups
from benchmarks.common import DATA_DIR, Sizes, log
from benchmarks.peers import time_travel as peer_time_travel
from benchmarks.peers.chdb_peer import ChDbPeer, session_class
from benchmarks.peers.data import Market, read_market
from benchmarks.peers.duckdb_peer import DuckDbPeer
from benchmarks.peers.engine import DAY_ROWS, PAGE_ROWS, PER_REQUEST, TOLERANCE, Loaded, Peer, Query, Window
from benchmarks.peers.k2_api import Api, Scope
from benchmarks.peers.k2_in_process import FULL_COLUMNS, InProcess
from benchmarks.peers.questdb_peer import QuestDbPeer
from benchmarks.peers.questdb_server import questdb
from benchmarks.peers.report import (
    API_COLUMNS,
    API_FORMATS,
    K2_API,
    K2_API_ON_THE_FLY,
    K2_ON_THE_FLY,
    Column,
    best,
    caches_table,
    figures_table,
    full_table,
    measures,
    variants_table,
)
from benchmarks.peers.runs import REFERENCE, Entry, Runs
from benchmarks.picks import Draw, SymbolDay, distinct_runs
from benchmarks.query.latency import ensure_lake, rollup_state
from benchmarks.results import Section, Table, Unit
from benchmarks.synthetic_data import lake_dir
from k2.domain.bars import Interval
from k2.lake.catalog import open_catalog
from k2.lake.tables import TRADES
from k2.query import BarQuery, QueryEngine, bars
from k2.query.preload import preload
from k2.settings import ApiSettings, K2Settings, QuerySettings

TITLE = "Peers: K2 beside QuestDB, chDB and DuckDB"
SEED = 31
ON_THE_FLY = frozenset({Query.BARS, Query.BARS_AGAIN, Query.ALL_BARS})
ROLLUP_OFF = {"K2_QUERY_ROLLUP": "false"}
EVERY_DAY = 100_000
# Q4 full: a peer whose first run takes longer than this runs once more only.
FULL_SLOW_MS = 60_000.0


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


@dataclass
class PeerBench:
    """The entries asked, the K2 API servers' clients (by column name) and what the runs found."""

    sizes: Sizes
    lake: Lake
    entries: list[Entry]
    servers: dict[str, Client]
    refusal: str | None
    runs: Runs = field(default_factory=Runs)
    caches: list[tuple[str, dict[str, CacheCounts]]] = field(default_factory=list)
    travel: peer_time_travel.TimeTravel | None = None
    warmed_seconds: float = 0.0

    def _asked(self, query: Query) -> list[Entry]:
        refused = query is Query.ALL_BARS and self.refusal is not None
        return [e for e in self.entries if e.asks(query) and not (refused and e.system in API_COLUMNS)]

    def counted(self, what: str, measure: Callable[[], None]) -> None:
        """``measure()``, noting the K2 API servers' cache look-ups during it as ``what``'s."""
        before = {name: cache_counts(client) for name, client in self.servers.items()}
        measure()
        after = {name: cache_counts(client) - before[name] for name, client in self.servers.items()}
        self.caches.append((what, after))

    def series(self, query: Query, picks: list[Window | None], warmup: int) -> None:
        """The warm-up picks, then the timed ones with the servers' caches counted."""
        asked = self._asked(query)
        self.runs.measure(query, asked, picks[:warmup], warmup)
        self.counted(query.value, lambda: self.runs.measure(query, asked, picks[warmup:], 0))

    def distinct(self, space: int, runs: int) -> int:
        """Timed picks of a series: ``runs``, no more than the distinct picks left after warm-up."""
        return distinct_runs(runs, self.sizes.warmup_runs, space, 1)

    def per_request(self) -> list[Window | None]:
        """Q1 … Q5 (and Q1, Q2 again) on seeded distinct picks; Q1's picks, for time travel."""
        lake, sizes, warm = self.lake, self.sizes, self.sizes.warmup_runs
        log(f"{TITLE}: Q1 x {sizes.peer_query_runs}, then again")
        hours = Draw(lake.hours, SEED).take(warm + self.distinct(len(lake.hours), sizes.peer_query_runs))
        q1: list[Window | None] = [Window(*hour, PAGE_ROWS) for hour in hours]
        self.series(Query.TICKS, q1, warm)
        self.series(Query.TICKS_AGAIN, q1[warm:], 0)
        log(f"{TITLE}: Q2 x {sizes.peer_query_runs}, then again")
        days = Draw(lake.days, SEED).take(warm + self.distinct(len(lake.days), sizes.peer_query_runs))
        q2: list[Window | None] = [day_window(d, DAY_ROWS) for d in days]
        self.series(Query.BARS, q2, warm)
        self.series(Query.BARS_AGAIN, q2[warm:], 0)
        log(f"{TITLE}: Q3 x {sizes.peer_bulk_runs}")
        self.series(Query.ALL_BARS, [None] * (1 + sizes.peer_bulk_runs), 1)
        for number, query in enumerate((Query.QUOTES, Query.EXPORT), start=1):
            log(f"{TITLE}: {query.short} x {sizes.peer_day_runs}")
            chosen = Draw(lake.days, SEED + number).take(warm + sizes.peer_day_runs)
            self.series(query, [day_window(d, min(d.trades, DAY_ROWS)) for d in chosen], warm)
        return q1

    def full(self, entries: list[Entry], slow: Entry) -> None:
        """Q4 full: every entry's first (cold) run and ``peer_bulk_runs`` later ones; ``slow``
        after the others, only once more when its first run takes over ``FULL_SLOW_MS``.
        """
        runs = self.sizes.peer_bulk_runs
        log(f"{TITLE}: Q4 full x {1 + runs}")
        self.runs.measure(Query.FULL_QUOTES, entries, [None] * (1 + runs), 0)
        log(f"{TITLE}: Q4 full, {slow.label}")
        self.runs.measure(Query.FULL_QUOTES, [slow], [None], 0)
        later = runs if self.runs.times[Query.FULL_QUOTES][slow.label][0] < FULL_SLOW_MS else 1
        self.runs.measure(Query.FULL_QUOTES, [slow], [None] * later, 0)

    def time_travel(self, q1: list[Window | None]) -> None:
        """Q1 now and as of an older snapshot, on picks Q1 did not ask."""
        log(f"{TITLE}: time travel x {self.sizes.peer_query_runs}")
        asked = [(w.symbol, w.start, w.end) for w in q1 if w is not None]

        def measure() -> None:
            self.travel = peer_time_travel.measure(
                self.lake,
                self.servers[K2_API],
                runs=self.sizes.peer_query_runs,
                warmup=self.sizes.warmup_runs,
                seed=SEED,
                asked=asked,
            )

        self.counted("Time travel (P14): Q1 now and as of an older snapshot, JSON", measure)


def _checked(runs: Runs) -> str:
    what = (
        f"{runs.checked:,} answers compared with K2 in process's: Q1, Q1 again and Q5 the same message "
        "ids in the same order, Q2, Q2 again and Q3 the same bars (open, high, low, close, volume and "
        "trade count exact, VWAP within 1e-6; QuestDB's values are decimals, so exact too), Q4 the same "
        "bid and ask per trade, Q4 full the same trade count, count of trades with a quote and sums of "
        "their bid and ask prices (exact decimals)"
    )
    if not runs.mismatches:
        return f"Checks: {what}. Every answer agreed."
    by_system = Counter(f"{m.query.short} {m.label}" for m in runs.mismatches)
    counts = ", ".join(f"{system}: {count}" for system, count in sorted(by_system.items()))
    examples = "; ".join(map(str, runs.mismatches[:3]))
    return f"Checks: {what}. **{len(runs.mismatches)} DISAGREED** ({counts}), e.g. {examples}."


def _protocols(runs: Runs, column: Column) -> str:
    chosen = [(query.short, best(runs, query, column)) for query in PER_REQUEST]
    faster = ", ".join(f"{short} {found[0]}" for short, found in chosen if found is not None)
    return f"{column.name}'s faster protocol by p50 (its column shows that one): {faster}."


def _api_note(space: Scope, refusal: str | None) -> str:
    api_q3 = (
        f"Q3 names all {len(space.symbols)} symbols and the lake's whole range, which the API takes; "
        "each Q3 request starts one whole minute earlier than the one before (before the first "
        "trade: the same bars), so the answer cache never answers it"
        if refusal is None
        else f"Q3 through the API would ask for {refusal}, which it refuses: Q3 is measured for K2 in "
        "process only and judged by that"
    )
    return (
        "K2 API: `k2 serve` (1 uvicorn worker, default settings: bars from the 1-minute rollup) over the "
        "lake on a free loopback port, asked on one keep-alive connection; K2 API on the fly: a second "
        "`k2 serve` with `K2_QUERY_ROLLUP=false`, asked Q2, Q2 again and Q3 only. Q1 and Q5 `GET "
        "/v1/trades` (limit 5,000; Q5 the symbol-day's rows, at most the API's 100,000), Q2 and Q3 "
        "`POST /v1/aggregations` (metrics ohlcv, vwap and trade_count, interval 1m; "
        f"{api_q3}), Q4 `GET /v1/trades?with_quotes=true&quote_tolerance_ms="
        f"{TOLERANCE.total_seconds() * 1000:.0f}&limit=…`, each in JSON and with `format=arrow` (JSON / "
        "Arrow in the K2 API columns; the ratio uses JSON for Q1-Q3 and Arrow for Q4-Q5). K2 in "
        "process: `k2.query.trades`, `k2.query.bars` and `k2.query.enrich.with_prevailing_quotes` on a "
        "`QueryEngine` over the same lake; K2 in process on the fly: a second `QueryEngine` with "
        "`QuerySettings(rollup=False)`."
    )


def _cache_note(picks: dict[str, tuple[int, int]]) -> str:
    drawn = "; ".join(f"{what}: {taken:,} of {space:,}" for what, (taken, space) in picks.items())
    return (
        "Which K2 cache is warm: the API keeps encoded answers per snapshot and request, so a request "
        "asked before is answered from memory. Each query draws its picks without replacement ("
        f"picks drawn, warm-up included, of the distinct ones: {drawn}), so its figures are of "
        "requests the answer cache had not seen (JSON and Arrow are different requests); Q1 again and "
        "Q2 again ask the same timed requests once more, which it answers. Decoded row groups (K2's "
        "other cache, in process too) fill as picks read them and stay: the table of caches gives "
        "both caches' hits in each timed series."
    )


def _full_note(market_trades: int, market_quotes: int, questdb_label: str) -> str:
    return (
        f"Q4 full joins all {market_trades:,} trades with the {market_quotes:,} quotes. K2 in process, "
        f"timed: `engine.scan(TRADES)`, `k2.query.ranges.pieces` and `materialise` of the columns "
        f"{', '.join(f'`{c}`' for c in FULL_COLUMNS)} of every row group, then `with_prevailing_quotes` "
        "(tolerance 24 h) to the joined Arrow table; its checksum (counts, sums of bid and ask) is "
        "computed after the clock stops. It runs on a `QueryEngine` made for it, so its first run "
        "decodes every row group (files in the OS page cache). The peers: the same join over their "
        "whole tables (each as its Q4, quotes deduplicated per instant), timed to the one-row checksum "
        f"their SQL computes, so its rows never leave the engine; {questdb_label} asked once per run "
        f"(the answer is one row), and after the others. Cold is each system's first Q4 full run; warm "
        "the median of the later runs."
    )


def notes(
    bench: PeerBench, loads: Loads, peers: list[Peer], space: Scope, picks: dict[str, tuple[int, int]]
) -> list[str]:
    """How each system was asked and loaded, and what the checks found."""
    runs = bench.runs
    travel = [] if bench.travel is None else [bench.travel.note()]
    return [
        _checked(runs),
        _api_note(space, bench.refusal),
        _cache_note(picks),
        *(f"{peer.name}: {peer.describe()}" for peer in peers),
        f"Q4's tolerance is {TOLERANCE.total_seconds() * 1000:,.0f} ms (24 h, the most the API takes) "
        "so that it never cuts a quote that prevails: of the "
        f"{runs.quoted_trades:,} trades K2 joined (warm-up picks included), {runs.unquoted_trades:,} "
        "had no quote within it. The peers join the quotes from the day's start minus that tolerance, "
        "which is the same on this data (the checks compare every trade).",
        _full_note(loads.trades, loads.quotes, f"{QuestDbPeer.name} over PG wire"),
        *travel,
        f"Before the timed series K2 decoded its trades' row groups in {bench.warmed_seconds:.1f} s "
        "(in process and in each API server, see `_warm_k2`), as each peer holds its tables once loaded; "
        "first-touch figures, row groups not decoded yet, are the API section's first requests. "
        f"Loads come from files or Arrow in memory, not K2's ingest from CSV (the ingest benchmarks): "
        f"the lake's {loads.files} data files ({loads.trades:,} trades, {loads.quotes:,} quotes) were "
        f"read once with pyarrow in {loads.read_seconds:.1f} s, then loaded into each peer in turn.",
        "p99 is the nearest-rank 99th percentile, so over fewer than 100 runs it is their maximum. "
        "Each peer's figures are its fastest protocol's by p50; the fastest peer is the one with "
        "the best p50 (Q5: the best median rows/s), and both of its figures are shown.",
    ]


def _warm_k2(lake: Lake, servers: dict[str, Client], on_the_fly: QueryEngine) -> float:
    """Have K2 decode its trades' row groups before the timed series, as the peers hold their
    tables once loaded: every column in process (``k2.query.preload``) and in the API server (a
    ``limit=1`` request per symbol-day); the columns bars need on the on-the-fly engine and server
    (one day of hourly bars per symbol-day, a request no series asks). Quotes are decoded by Q4's
    warm-up picks and its first full run. Returns the seconds it took.
    """
    started = time.perf_counter()
    preload(lake.engine, days=EVERY_DAY, stop=threading.Event(), specs=(TRADES,))
    warm_row_groups(servers[K2_API], lake.days)
    hourly = Interval.parse("1h")
    for day in lake.days:
        bars(on_the_fly, BarQuery(hourly, symbols=(day.symbol,), start=day.start, end=day.end))
        body = {
            "symbols": [day.symbol],
            "interval": "1h",
            "start_time": iso(day.start),
            "end_time": iso(day.end),
        }
        servers[K2_API_ON_THE_FLY].post("/v1/aggregations", body)
    return time.perf_counter() - started


def _engine(settings: K2Settings, query: QuerySettings) -> QueryEngine:
    return QueryEngine(open_catalog(settings), settings.lake.namespace, query)


def _columns(peers: list[Peer]) -> list[Column]:
    return [
        Column(K2_API, API_FORMATS, peer=False),
        Column(K2_API_ON_THE_FLY, API_FORMATS, peer=False),
        Column(REFERENCE, ("",), peer=False),
        Column(K2_ON_THE_FLY, ("",), peer=False),
        *(Column(p.name, tuple(p.engines()), peer=True) for p in peers),
    ]


def _entries(
    servers: dict[str, Client], space: Scope, engines: tuple[QueryEngine, QueryEngine], peers: list[Peer]
) -> list[Entry]:
    main, on_the_fly = engines
    return [
        *(
            Entry(
                name, fmt, Api(servers[name], fmt == "Arrow", space), None if name == K2_API else ON_THE_FLY
            )
            for name in API_COLUMNS
            for fmt in API_FORMATS
        ),
        Entry(REFERENCE, "", InProcess(main)),
        Entry(K2_ON_THE_FLY, "", InProcess(on_the_fly), ON_THE_FLY),
        *(Entry(p.name, variant, engine) for p in peers for variant, engine in p.engines().items()),
    ]


def _full(bench: PeerBench, settings: K2Settings, peers: list[Peer]) -> None:
    """Q4 full on a fresh K2 engine (closed after) and on each peer, QuestDB over PG wire last."""
    fresh = _engine(settings, settings.query)
    try:
        quest = next(p for p in peers if isinstance(p, QuestDbPeer))
        others = [
            Entry(p.name, variant, engine)
            for p in peers
            if p is not quest
            for variant, engine in p.engines().items()
        ]
        slow = Entry(quest.name, "PG wire", quest.engines()["PG wire"])
        bench.full([Entry(REFERENCE, "", InProcess(fresh)), *others], slow)
    finally:
        fresh.close()


def _description(sizes: Sizes, lake: Lake, *, exchange: str, loads: Loads, threads: int, rollup: str) -> str:
    return (
        f"The synthetic lake `benchmarks/.data/lakes/{lake.path.name}` ({sizes.symbols} symbols x "
        f"{sizes.days} days, exchange {exchange}, {loads.trades:,} trades and {loads.quotes:,} "
        f"quotes; {rollup}), the same rows loaded into each peer, the same seeded picks for every "
        "system: on each pick the systems answer one after the other, in a seeded random order that the "
        "next pick reverses (of any two, each goes first equally often: the K2 API's JSON and "
        "Arrow requests, like QuestDB's three protocols, take turns finding their server's caches "
        f"warm), after {sizes.warmup_runs} warm-up picks (Q3: 1). Q1 and Q2: up to "
        f"{sizes.peer_query_runs} distinct picks, then the same again; Q3: {sizes.peer_bulk_runs} runs; "
        f"Q4 and Q5: {sizes.peer_day_runs} picks of a symbol-day; Q4 full: a first run and "
        f"{sizes.peer_bulk_runs} more. Latency is the wall time from sending the query to holding the "
        "whole answer (the last byte over HTTP, every row fetched over PG wire, the Arrow table in "
        f"process); Q5's also reads the answer as Arrow. K2 in process and DuckDB use {threads} "
        f"threads, chDB `max_threads` {threads}; QuestDB sizes its own pools. The limit is the fastest "
        "peer on each query, so K2 / limit reads K2's API against the best of the field; time travel "
        "has no peer (none keeps its table's history) and compares K2 with itself."
    )


def run(sizes: Sizes) -> Section:
    """Load the peers, then time the queries on every system."""
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
        on_the_fly = _engine(settings, settings.query.model_copy(update={"rollup": False}))
        stack.callback(on_the_fly.close)
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
        servers = {
            K2_API: stack.enter_context(Client(stack.enter_context(serve(lake.path, "peers")).port)),
            K2_API_ON_THE_FLY: stack.enter_context(
                Client(stack.enter_context(serve(lake.path, "peers-on-the-fly", env=ROLLUP_OFF)).port)
            ),
        }
        columns = _columns(peers)
        bench = PeerBench(
            sizes, lake, _entries(servers, space, (lake.engine, on_the_fly), peers), servers, refusal
        )
        bench.warmed_seconds = _warm_k2(lake, servers, on_the_fly)
        q1 = bench.per_request()
        bench.time_travel(q1)
        _full(bench, settings, peers)
    picks = {
        "Q1": (len(q1), len(lake.hours)),
        "Q2": (sizes.warmup_runs + bench.distinct(len(lake.days), sizes.peer_query_runs), len(lake.days)),
        "Q4 and Q5 each": (sizes.warmup_runs + sizes.peer_day_runs, len(lake.days)),
    }
    questdb_column = next(c for c in columns if c.name == QuestDbPeer.name)
    travel = [] if bench.travel is None else [bench.travel.table()]
    return Section(
        title=f"{TITLE} ({loads.trades / 1e6:g}M trades)",
        description=_description(
            sizes, lake, exchange=exchange, loads=loads, threads=threads, rollup=rollup_state(lake.engine)
        ),
        limit_name="fastest peer",
        measures=[*measures(bench.runs, columns), *([] if bench.travel is None else bench.travel.measures())],
        tables=[
            figures_table(bench.runs, columns, tail=False),
            figures_table(bench.runs, columns, tail=True),
            full_table(bench.runs, columns, f"{Query.FULL_QUOTES.value}: seconds"),
            *travel,
            caches_table(bench.caches),
            variants_table(bench.runs, questdb_column),
            variants_table(bench.runs, columns[0]),
            loads.table(),
        ],
        notes=[*notes(bench, loads, peers, space, picks), _protocols(bench.runs, questdb_column)],
    )
