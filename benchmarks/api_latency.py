"""Benchmark 4: K2's REST API as a client sees it, beside the same queries in DuckDB.

``k2 serve`` (uvicorn, one worker) runs in its own process on 127.0.0.1 over the synthetic
market's lake and then over the ASX sample's; a client in this process sends requests on
keep-alive connections (``http.client``) and times each from sending the request to reading the
last byte of the answer. Every answer must be 200, and its rows are checked against the limit:
the same query written by hand in DuckDB over all the table's Parquet files, run alternately with
the API's on the same picks (symbol, day and hour drawn at random, seeded).

A latency series runs up to the size's run count, but stops once it has spent
``Sizes.api_series_seconds`` after ``MIN_RUNS`` runs: the label gives the runs it got.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from benchmarks import raw_queries
from benchmarks.api_http import Client, Reply, serve
from benchmarks.common import ASX_SAMPLE, DATA_DIR, Sizes, fresh_dir, log, percentile, timed_ms
from benchmarks.ingest import BenchmarkError
from benchmarks.load_k2 import quiet
from benchmarks.query_latency import Series, ensure_lake, session_hour
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.synthetic_data import lake_dir
from k2.domain.time import local_day_bounds
from k2.domain.venues import Venue, venue
from k2.lake.catalog import open_catalog
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import TRADES
from k2.query import QueryEngine, TickQuery, trades
from k2.settings import K2Settings
from k2.testing import EmbeddedLake

TITLE = "REST API"
PAGE_ROWS = 5000
REPLAY_BATCH = 1000
REPLAY_PAGES = 5
CLIENTS = 8
MIN_RUNS = 20
EXPORT_ROWS = 100_000  # the API's default K2_API_MAX_ROWS: the most one request may return
MIN_DAY_TRADES = 1000
VWAP_TOLERANCE = Decimal("1e-6")
BAR_FIELDS = ("open", "high", "low", "close", "volume")

TICK_TARGET = Target(15, Unit.MILLISECONDS)
BARS_TARGET = Target(20, Unit.MILLISECONDS)
RATE_TARGET = Target(200, Unit.REQUESTS_PER_SECOND)
LOADED_P99_TARGET = Target(100, Unit.MILLISECONDS)
JSON_EXPORT_TARGET = Target(1_000_000, Unit.ROWS_PER_SECOND)
ARROW_EXPORT_TARGET = Target(10_000_000, Unit.ROWS_PER_SECOND)


@dataclass(frozen=True, slots=True)
class SymbolDay:
    """A symbol's venue-local trading day, its UTC bounds and its trade count."""

    symbol: str
    day: date
    start: datetime
    end: datetime
    trades: int


@dataclass
class Lake:
    """A lake to serve: its directory, its trades' Parquet files and the days worth querying."""

    name: str
    path: Path
    exchange: str
    venue: Venue
    engine: QueryEngine
    paths: list[str]
    days: list[SymbolDay]

    @classmethod
    def open(cls, name: str, path: Path, exchange: str, con: duckdb.DuckDBPyConnection) -> Lake:
        """The lake in ``path``; its symbol-days with at least ``MIN_DAY_TRADES`` trades."""
        settings = K2Settings(data_dir=path)
        engine = QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)
        paths = engine.scan(TRADES).paths
        v = venue(exchange)
        counted = con.sql(
            "SELECT symbol, CAST(timezone($zone, timestamp) AS DATE) AS day, count(*) AS n "
            "FROM read_parquet($paths, hive_partitioning = false) WHERE exchange = $exchange "
            "GROUP BY ALL HAVING count(*) >= $least ORDER BY ALL",
            params={"zone": v.timezone, "paths": paths, "exchange": exchange, "least": MIN_DAY_TRADES},
        ).fetchall()
        days = [SymbolDay(s, d, *local_day_bounds(d, v.zone), int(n)) for s, d, n in counted]
        if not days:
            raise BenchmarkError(f"{path} has no symbol with {MIN_DAY_TRADES} trades in a day")
        return cls(name, path, exchange, v, engine, paths, days)


def ensure_asx_lake() -> Path:
    """The ASX sample's lake: the ingest benchmark's if it left one, else loaded here."""
    path = DATA_DIR / "lakes" / "asx-sample"
    if (path / "catalog.db").is_file():
        settings = K2Settings(data_dir=path)
        engine = QueryEngine(open_catalog(settings), settings.lake.namespace, settings.query)
        try:
            if engine.scan(TRADES).paths:
                return path
        except TableNotFoundError:
            pass
        finally:
            engine.close()
    log(f"{TITLE}: no ASX sample lake left by the ingest benchmark; loading {ASX_SAMPLE}")
    quiet()
    lake = EmbeddedLake.create(fresh_dir(path))
    try:
        lake.load_asx(ASX_SAMPLE)
    finally:
        lake.engine.close()
    return path


def iso(instant: datetime) -> str:
    """An instant as the API takes it."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_rows(reply: Reply) -> list[dict[str, Any]]:
    """The rows of a JSON answer."""
    rows: list[dict[str, Any]] = json.loads(reply.body)["data"]
    return rows


def arrow_rows(reply: Reply) -> pa.Table:
    """The rows of an Arrow IPC stream answer."""
    return pa.ipc.open_stream(reply.body).read_all()


def ids(rows: list[dict[str, Any]] | pa.Table) -> list[str]:
    """The message ids of ``rows``, in order."""
    if isinstance(rows, pa.Table):
        return [str(v) for v in rows["message_id"].to_pylist()]
    return [str(row["message_id"]) for row in rows]


def close_enough(api: object, exact: object, tolerance: Decimal = Decimal(0)) -> bool:
    """Whether the API's decimal string or number ``api`` is ``exact`` (to ``tolerance``)."""
    if api is None or exact is None:
        return api is exact
    return abs(Decimal(str(api)) - Decimal(str(exact))) <= tolerance


def pick_hour(lake: Lake, rng: random.Random) -> tuple[str, datetime, datetime]:
    """A random symbol and whole session hour of one of its days."""
    pick = rng.choice(lake.days)
    start = session_hour(rng, [pick.day], lake.venue)
    return pick.symbol, start, start + timedelta(hours=1)


def hour_params(symbol: str, start: datetime, end: datetime) -> dict[str, str | int]:
    """The query string of one symbol's first page of trades in one hour."""
    return {"symbol": symbol, "start_time": iso(start), "end_time": iso(end), "limit": PAGE_ROWS}


def repeat(runs: int, warmup: int, seconds: float, step: Callable[[bool], None]) -> None:
    """``step(False)`` ``warmup`` times, then ``step(True)`` up to ``runs`` times, stopping once
    ``seconds`` have passed after ``MIN_RUNS`` measured runs.
    """
    for _ in range(warmup):
        step(False)
    began = time.perf_counter()
    for done in range(1, runs + 1):
        step(True)
        if done >= min(MIN_RUNS, runs) and time.perf_counter() - began > seconds:
            return


@dataclass(frozen=True, slots=True)
class Ticks:
    """The one-hour query's latencies: JSON (with the limit's), Arrow, and K2's query alone."""

    json: Series
    arrow: list[float]
    query: list[float]

    def breakdown(self, lake: Lake) -> Table:
        """Where the one-hour query's time goes, request by request."""
        cells = [
            (f"API, JSON: `GET /v1/trades` ({len(self.json.k2)} runs)", self.json.k2),
            ("API, the same request with `format=arrow`", self.arrow),
            (
                "  JSON minus Arrow, request by request",
                [j - a for j, a in zip(self.json.k2, self.arrow, strict=True)],
            ),
            ("K2 `trades()` in the benchmark's process on the same picks: the query alone", self.query),
            (f"Raw DuckDB over all {len(lake.paths)} files (the limit)", self.json.limit),
        ]
        rows: list[tuple[str, ...]] = [
            (label, f"{percentile(v, 0.5):.1f}", f"{percentile(v, 0.99):.1f}") for label, v in cells
        ]
        return Table(f"{lake.name}: where the one-hour query's time goes", ("Step", "p50 ms", "p99 ms"), rows)


@dataclass
class Part:
    """What one lake's measurements give the section."""

    measures: list[Measure]
    tables: list[Table]
    notes: list[str]


@dataclass
class Throughput:
    """Requests of several concurrent clients: their latencies, rows and wall time."""

    latencies: list[float] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Requests per second."""
        return len(self.latencies) / self.seconds


class ApiBench:
    """The client, the raw DuckDB database and the picks of one lake's measurements."""

    def __init__(self, sizes: Sizes, lake: Lake, client: Client, con: duckdb.DuckDBPyConnection) -> None:
        self.sizes = sizes
        self.lake = lake
        self.client = client
        self.con = con
        self.rng = random.Random(23)
        self.mismatches: list[str] = []

    def label(self, text: str) -> str:
        """A measure's label, naming the lake."""
        return f"{self.lake.name}: {text}"

    def check(self, agrees: bool, what: str) -> None:
        """Remember a disagreement between the API and the limit."""
        if not agrees:
            self.mismatches.append(what)

    def ticks(self) -> Ticks:
        """``GET /v1/trades``, one symbol, one hour, first 5,000 rows, in JSON; the same request
        in Arrow; and K2's query alone in this process, on the same picks.
        """
        series = Series(
            self.label(f"`GET /v1/trades` 1 symbol x 1 hour, first {PAGE_ROWS:,} rows (JSON)"), TICK_TARGET
        )
        arrow: list[float] = []
        query: list[float] = []

        def step(measured: bool) -> None:
            symbol, start, end = pick_hour(self.lake, self.rng)
            params = hour_params(symbol, start, end)
            as_json = partial(self.client.get, "/v1/trades", params)
            in_arrow = partial(self.client.get, "/v1/trades", {**params, "format": "arrow"})
            # The second request finds the server's plan and caches warm: take turns being first.
            if len(series.k2) % 2:
                as_arrow, arrow_ms = timed_ms(in_arrow)
                reply, api_ms = timed_ms(as_json)
            else:
                reply, api_ms = timed_ms(as_json)
                as_arrow, arrow_ms = timed_ms(in_arrow)
            tick_query = TickQuery(symbols=(symbol,), start=start, end=end, limit=PAGE_ROWS)
            _, query_ms = timed_ms(partial(trades, self.lake.engine, tick_query))
            raw, raw_ms = timed_ms(
                partial(
                    raw_queries.ticks,
                    self.con,
                    self.lake.paths,
                    symbol=symbol,
                    start=start,
                    end=end,
                    limit=PAGE_ROWS,
                )
            )
            expected = ids(raw)
            self.check(
                ids(json_rows(reply)) == expected and ids(arrow_rows(as_arrow)) == expected,
                f"trades of {symbol} from {start:%Y-%m-%d %H:%M} UTC",
            )
            if measured:
                series.k2.append(api_ms)
                series.limit.append(raw_ms)
                arrow.append(arrow_ms)
                query.append(query_ms)

        repeat(self.sizes.tick_query_runs, self.sizes.warmup_runs, self.sizes.api_series_seconds, step)
        return Ticks(series, arrow, query)

    def bars(self) -> Series:
        """``POST /v1/aggregations``: one symbol's 1-minute OHLCV and VWAP bars of one day."""
        series = Series(self.label("`POST /v1/aggregations` 1-minute bars, 1 symbol x 1 day"), BARS_TARGET)

        def step(measured: bool) -> None:
            pick = self.rng.choice(self.lake.days)
            body = {
                "symbols": [pick.symbol],
                "metrics": ["ohlcv", "vwap"],
                "interval": "1m",
                "start_time": iso(pick.start),
                "end_time": iso(pick.end),
            }
            reply, api_ms = timed_ms(partial(self.client.post, "/v1/aggregations", body))
            raw, raw_ms = timed_ms(
                partial(
                    raw_queries.symbol_minute_bars,
                    self.con,
                    self.lake.paths,
                    symbol=pick.symbol,
                    start=pick.start,
                    end=pick.end,
                )
            )
            got, expected = json_rows(reply), raw.to_pylist()
            self.check(
                len(got) == len(expected)
                and all(
                    datetime.fromisoformat(g["interval_start"]) == e["interval_start"]
                    and all(close_enough(g[f], e[f]) for f in BAR_FIELDS)
                    and close_enough(g["vwap"], e["vwap"], VWAP_TOLERANCE)
                    for g, e in zip(got, expected, strict=False)
                ),
                f"1-minute bars of {pick.symbol} on {pick.day}",
            )
            if measured:
                series.k2.append(api_ms)
                series.limit.append(raw_ms)

        repeat(self.sizes.tick_query_runs, self.sizes.warmup_runs, self.sizes.api_series_seconds, step)
        return series

    def summaries(self) -> Series:
        """``GET /v1/summary/{symbol}/{day}``."""
        series = Series(self.label("`GET /v1/summary` 1 symbol x 1 day"), None)

        def step(measured: bool) -> None:
            pick = self.rng.choice(self.lake.days)
            path = f"/v1/summary/{pick.symbol}/{pick.day.isoformat()}"
            reply, api_ms = timed_ms(partial(self.client.get, path, {"exchange": self.lake.exchange}))
            raw, raw_ms = timed_ms(
                partial(
                    raw_queries.day_summary,
                    self.con,
                    self.lake.paths,
                    symbol=pick.symbol,
                    exchange=self.lake.exchange,
                    day=pick.day,
                    zone=self.lake.venue.zone,
                )
            )
            got, expected = json.loads(reply.body)["data"], raw.to_pylist()[0]
            self.check(
                all(close_enough(got[f], expected[f]) for f in (*BAR_FIELDS, "trade_count"))
                and close_enough(got["vwap"], expected["vwap"], VWAP_TOLERANCE),
                f"summary of {pick.symbol} on {pick.day}",
            )
            if measured:
                series.k2.append(api_ms)
                series.limit.append(raw_ms)

        repeat(self.sizes.summary_runs, self.sizes.warmup_runs, self.sizes.api_series_seconds, step)
        return series

    def replays(self) -> tuple[Series, Series]:
        """``POST /v1/replay`` of one symbol's day, 1,000 rows a page: the first page, then the
        next pages following the cursor; the limit computes the same page and progress counts.
        """
        first = Series(
            self.label(f"`POST /v1/replay` first page of {REPLAY_BATCH:,} (1 symbol x 1 day)"), None
        )
        following = Series(self.label(f"`POST /v1/replay` pages 2-{REPLAY_PAGES} via the cursor"), None)

        def step(measured: bool) -> None:
            pick = self.rng.choice(self.lake.days)
            body: dict[str, Any] = {
                "symbols": [pick.symbol],
                "start_time": iso(pick.start),
                "end_time": iso(pick.end),
                "batch_size": REPLAY_BATCH,
            }
            after: raw_queries.Key | None = None
            for page in range(REPLAY_PAGES):
                reply, api_ms = timed_ms(partial(self.client.post, "/v1/replay", body))
                (rows, after, delivered, total), raw_ms = timed_ms(
                    partial(
                        raw_queries.replay_page,
                        self.con,
                        self.lake.paths,
                        symbol=pick.symbol,
                        start=pick.start,
                        end=pick.end,
                        limit=REPLAY_BATCH,
                        after=after,
                    )
                )
                doc = json.loads(reply.body)
                progress = doc["progress"]
                self.check(
                    ids(doc["data"]) == ids(rows)
                    and (progress["delivered"], progress["total"]) == (delivered, total),
                    f"replay page {page + 1} of {pick.symbol} on {pick.day}",
                )
                if measured:
                    series = first if page == 0 else following
                    series.k2.append(api_ms)
                    series.limit.append(raw_ms)
                cursor = doc["pagination"]["next_cursor"]
                if cursor is None:
                    return
                body["cursor"] = cursor

        repeat(self.sizes.tick_query_runs, self.sizes.warmup_runs, self.sizes.api_series_seconds, step)
        return first, following

    def throughput(self) -> tuple[Throughput, Throughput]:
        """``CLIENTS`` threads sending one-hour queries back to back, each on its own keep-alive
        connection, for ``Sizes.api_throughput_seconds``; then the limit's query from as many
        threads, each on its own DuckDB cursor, for as long.
        """
        seconds = self.sizes.api_throughput_seconds

        def api_client(index: int, deadline: float) -> Throughput:
            rng, done = random.Random(1000 + index), Throughput()
            with Client(self.client.port) as client:
                while time.perf_counter() < deadline:
                    params = hour_params(*pick_hour(self.lake, rng))
                    reply, ms = timed_ms(partial(client.get, "/v1/trades", params))
                    rows = reply.body.count(b'"message_id":')
                    self.check(rows == int(reply.headers["x-record-count"]), "a page under load")
                    done.latencies.append(ms)
                    done.rows += rows
            return done

        def raw_client(index: int, deadline: float) -> Throughput:
            rng, done = random.Random(1000 + index), Throughput()
            cursor = self.con.cursor()
            try:
                while time.perf_counter() < deadline:
                    symbol, start, end = pick_hour(self.lake, rng)
                    rows, ms = timed_ms(
                        partial(
                            raw_queries.ticks,
                            cursor,
                            self.lake.paths,
                            symbol=symbol,
                            start=start,
                            end=end,
                            limit=PAGE_ROWS,
                        )
                    )
                    done.latencies.append(ms)
                    done.rows += rows.num_rows
            finally:
                cursor.close()
            return done

        return self._concurrently(api_client, seconds), self._concurrently(raw_client, seconds)

    @staticmethod
    def _concurrently(client: Callable[[int, float], Throughput], seconds: float) -> Throughput:
        began = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            parts = list(pool.map(client, range(CLIENTS), [began + seconds] * CLIENTS))
        total = Throughput(seconds=time.perf_counter() - began)
        for part in parts:
            total.latencies += part.latencies
            total.rows += part.rows
        return total

    def exports(self) -> tuple[list[float], list[float], list[float], int]:
        """``GET /v1/trades`` of one symbol's whole day in one request, in JSON and in Arrow,
        beside DuckDB reading the same rows to Arrow: rows per second of each run, and the rows.
        """
        as_json: list[float] = []
        as_arrow: list[float] = []
        limit: list[float] = []
        rows = 0
        for _ in range(self.sizes.api_export_runs):
            pick = self.rng.choice(self.lake.days)
            count = min(pick.trades, EXPORT_ROWS)
            params: dict[str, str | int] = {
                "symbol": pick.symbol,
                "start_time": iso(pick.start),
                "end_time": iso(pick.end),
                "limit": count,
            }
            reply, json_ms = timed_ms(partial(self.client.get, "/v1/trades", params))
            arrow, arrow_ms = timed_ms(partial(self.client.get, "/v1/trades", {**params, "format": "arrow"}))
            raw, raw_ms = timed_ms(
                partial(
                    raw_queries.ticks,
                    self.con,
                    self.lake.paths,
                    symbol=pick.symbol,
                    start=pick.start,
                    end=pick.end,
                    limit=count,
                )
            )
            expected = ids(raw)
            self.check(
                len(expected) == count
                and ids(json_rows(reply)) == expected
                and ids(arrow_rows(arrow)) == expected,
                f"export of {pick.symbol} on {pick.day}",
            )
            as_json.append(count / json_ms * 1000)
            as_arrow.append(count / arrow_ms * 1000)
            limit.append(count / raw_ms * 1000)
            rows = count
        return as_json, as_arrow, limit, rows


def _rate_measures(bench: ApiBench, api: Throughput, limit: Throughput) -> list[Measure]:
    return [
        Measure(
            bench.label(f"{CLIENTS} clients on `GET /v1/trades` 1 symbol x 1 hour: requests/s"),
            Unit.REQUESTS_PER_SECOND,
            api.rate,
            limit.rate,
            RATE_TARGET,
        ),
        Measure(
            bench.label(f"{CLIENTS} clients: p99 latency ({len(api.latencies)} requests)"),
            Unit.MILLISECONDS,
            percentile(api.latencies, 0.99),
            percentile(limit.latencies, 0.99),
            LOADED_P99_TARGET,
        ),
    ]


def _median(values: list[float]) -> float:
    return percentile(values, 0.5)


def measure_synthetic(sizes: Sizes, lake: Lake, con: duckdb.DuckDBPyConnection) -> Part:
    """Everything on the synthetic market's lake."""
    with serve(lake.path, "synthetic") as server, Client(server.port) as client:
        bench = ApiBench(sizes, lake, client, con)
        log(f"{TITLE}: {lake.name}: one symbol, one hour (JSON, Arrow, K2 in process)")
        ticks = bench.ticks()
        log(f"{TITLE}: {lake.name}: one day of 1-minute bars")
        minute = bench.bars()
        log(f"{TITLE}: {lake.name}: daily summary")
        summary = bench.summaries()
        log(f"{TITLE}: {lake.name}: replay")
        first, following = bench.replays()
        log(f"{TITLE}: {lake.name}: {CLIENTS} clients for {sizes.api_throughput_seconds:.0f} s, then DuckDB")
        loaded, loaded_limit = bench.throughput()
        log(f"{TITLE}: {lake.name}: export of one symbol-day x {sizes.api_export_runs}")
        as_json, as_arrow, raw_rate, export_rows = bench.exports()
    export = f"`GET /v1/trades` 1 symbol x 1 day ({export_rows:,} rows), {sizes.api_export_runs} runs, median"
    measures = [
        *ticks.json.measures(),
        *minute.measures(),
        *summary.measures(),
        *first.measures(),
        *following.measures(),
        *_rate_measures(bench, loaded, loaded_limit),
        Measure(
            bench.label(f"{export}: JSON rows/s"),
            Unit.ROWS_PER_SECOND,
            _median(as_json),
            _median(raw_rate),
            JSON_EXPORT_TARGET,
        ),
        Measure(
            bench.label(f"{export}: Arrow rows/s"),
            Unit.ROWS_PER_SECOND,
            _median(as_arrow),
            _median(raw_rate),
            ARROW_EXPORT_TARGET,
        ),
    ]
    notes = [
        _checked(bench),
        f"Under load the {CLIENTS} clients ran {len(loaded.latencies):,} requests in "
        f"{loaded.seconds:.1f} s ({loaded.rows / loaded.seconds:,.0f} rows/s, p50 "
        f"{percentile(loaded.latencies, 0.5):,.0f} ms); the limit ran {len(loaded_limit.latencies):,} "
        f"queries from {CLIENTS} threads on one DuckDB database in {loaded_limit.seconds:.1f} s. The "
        "clients run in the benchmark's process on the same 2 CPUs as the server.",
    ]
    return Part(measures, [ticks.breakdown(lake)], notes)


def measure_asx(sizes: Sizes, lake: Lake, con: duckdb.DuckDBPyConnection) -> Part:
    """The single-call latencies on the ASX sample's lake."""
    with serve(lake.path, "asx-sample") as server, Client(server.port) as client:
        bench = ApiBench(sizes, lake, client, con)
        log(f"{TITLE}: {lake.name}: one symbol, one hour; bars; summary; replay")
        ticks = bench.ticks()
        minute = bench.bars()
        summary = bench.summaries()
        first, following = bench.replays()
    measures = [
        *ticks.json.measures(),
        *minute.measures(),
        *summary.measures(),
        *first.measures(),
        *following.measures(),
    ]
    return Part(measures, [], [_checked(bench)])


def _checked(bench: ApiBench) -> str:
    if not bench.mismatches:
        return (
            f"{bench.lake.name}: every answer was 200, and the API and the limit returned the same rows "
            "(bars and summaries: the same OHLCV and trade count, VWAP within 1e-6) in every run."
        )
    return (
        f"{bench.lake.name}: the API and the limit DISAGREED {len(bench.mismatches)} times, "
        f"e.g. on {bench.mismatches[0]}."
    )


def run(sizes: Sizes) -> Section:
    """Serve each lake and time the API against it."""
    exchange = ensure_lake(sizes)
    asx_path = ensure_asx_lake()
    settings = K2Settings(data_dir=lake_dir(sizes))
    con = raw_queries.connect(settings.query.threads, settings.query.memory_limit)
    synthetic = Lake.open(f"{sizes.trades / 1e6:g}M trades", lake_dir(sizes), exchange, con)
    asx = Lake.open("ASX sample", asx_path, "ASX", con)
    try:
        first = measure_synthetic(sizes, synthetic, con)
        second = measure_asx(sizes, asx, con)
    finally:
        synthetic.engine.close()
        asx.engine.close()
        con.close()
    return Section(
        title=f"{TITLE} ({synthetic.name} and the ASX sample)",
        description=(
            f"`k2 serve` (uvicorn, 1 worker, the default {settings.query.threads} DuckDB threads) on "
            f"127.0.0.1 over `benchmarks/.data/lakes/{synthetic.path.name}` ({sizes.symbols} symbols x "
            f"{sizes.days} days, {len(synthetic.paths)} trade files) and then over "
            f"`benchmarks/.data/lakes/{asx.path.name}` (the ASX sample: "
            f"{', '.join(sorted({d.symbol for d in asx.days}))} on {len({d.day for d in asx.days})} days "
            f"with {MIN_DAY_TRADES:,}+ trades). A client in the benchmark's process times each request "
            "from sending it to reading the last byte on a keep-alive connection (`http.client`); "
            "the limit is the same query in DuckDB over `read_parquet(<all the table's files>)`, "
            "run alternately with the API's on the same random picks. A series runs up to "
            f"{sizes.tick_query_runs} times after {sizes.warmup_runs} warm-up runs, but stops after "
            f"{sizes.api_series_seconds:.0f} s once it has {MIN_RUNS}."
        ),
        limit_name="hand-written DuckDB over all the table's files",
        measures=[*first.measures, *second.measures],
        tables=first.tables,
        notes=[
            *first.notes,
            *second.notes,
            "Latency is the client's wall time per request: p99 is the nearest-rank 99th percentile, "
            "so over fewer than 100 runs it is their maximum. Export rows/s is the symbol-day's rows "
            "over the request's wall time.",
        ],
    )
