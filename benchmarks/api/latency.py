"""Benchmark 4: K2's REST API as a client sees it, beside the same queries in DuckDB.

``k2 serve`` (uvicorn, one worker) runs in its own process on 127.0.0.1 over the synthetic
market's lake and then over the ASX sample's; a client in this process sends requests on
keep-alive connections (``http.client``) and times each from sending the request to reading the
last byte of the answer. Every answer must be 200, and its rows are checked against the limit:
the same query written by hand in DuckDB over all the table's Parquet files, run alternately with
the API's on the same picks.

The server keeps encoded answers per snapshot and request (its answer cache), so a request asked
again is served without reading or encoding anything. The cached series therefore draw their
picks without replacement (``benchmarks.picks``): their figures are of requests the answer cache
has not seen, and the same requests asked again are timed apart. Each series' answer-cache
look-ups are read from the server's ``/metrics`` before and after it.

A latency series runs up to the size's run count (no more than its distinct picks allow), but
stops once it has spent ``Sizes.api_series_seconds`` after ``MIN_RUNS`` runs: the label gives the
runs it got.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from benchmarks import raw_queries
from benchmarks.api import concurrency as api_concurrency
from benchmarks.api.load import Throughput, concurrently
from benchmarks.api.serving import ANSWERS, Client, Lookups, Reply, cache_counts, hour_params, iso, serve
from benchmarks.common import (
    ASX_SAMPLE,
    DATA_DIR,
    BenchmarkError,
    Sizes,
    fresh_dir,
    log,
    percentile,
    timed_ms,
)
from benchmarks.ingest.load_k2 import quiet
from benchmarks.picks import Draw, HourPick, SymbolDay, distinct_runs, hours, minute_windows
from benchmarks.query.latency import Series, ensure_lake, latency_rows, rollup_state
from benchmarks.results import Measure, Section, Table, Target, Unit
from benchmarks.synthetic_data import lake_dir
from k2.api import formats
from k2.api.models import OutputFormat
from k2.domain.time import local_day_bounds
from k2.domain.venues import Venue, venue
from k2.lake.catalog import open_catalog
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import TRADES
from k2.query import QueryEngine, TickQuery, trades
from k2.query.engine import Selection
from k2.settings import K2Settings
from k2.testing import EmbeddedLake

TITLE = "REST API"
PAGE_ROWS = 5000
REPLAY_BATCH = 1000
REPLAY_PAGES = 5
MIN_RUNS = 20
SEED = 23
EXPORT_ROWS = 100_000  # the API's default K2_API_MAX_ROWS: the most one request may return
MIN_DAY_TRADES = 1000
VWAP_TOLERANCE = Decimal("1e-6")
BAR_FIELDS = ("open", "high", "low", "close", "volume")

TICK_TARGET = Target(15, Unit.MILLISECONDS)
BARS_TARGET = Target(20, Unit.MILLISECONDS)
JSON_EXPORT_TARGET = Target(1_000_000, Unit.ROWS_PER_SECOND)
ARROW_EXPORT_TARGET = Target(10_000_000, Unit.ROWS_PER_SECOND)


T = TypeVar("T")


def symbol_days(con: duckdb.DuckDBPyConnection, paths: list[str], exchange: str, v: Venue) -> list[SymbolDay]:
    """The symbol-days of ``paths`` with at least ``MIN_DAY_TRADES`` trades at ``exchange``."""
    counted = con.sql(
        "SELECT symbol, CAST(timezone($zone, timestamp) AS DATE) AS day, count(*) AS n "
        "FROM read_parquet($paths, hive_partitioning = false) WHERE exchange = $exchange "
        "GROUP BY ALL HAVING count(*) >= $least ORDER BY ALL",
        params={"zone": v.timezone, "paths": paths, "exchange": exchange, "least": MIN_DAY_TRADES},
    ).fetchall()
    return [SymbolDay(s, d, *local_day_bounds(d, v.zone), int(n)) for s, d, n in counted]


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
        days = symbol_days(con, paths, exchange, v)
        if not days:
            raise BenchmarkError(f"{path} has no symbol with {MIN_DAY_TRADES} trades in a day")
        return cls(name, path, exchange, v, engine, paths, days)

    @property
    def hours(self) -> list[HourPick]:
        """Every symbol x day x session hour of the lake."""
        return hours(self.days, self.venue)


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


@dataclass
class Ticks:
    """The one-hour query pick by pick: the API in JSON (beside the limit) and in Arrow, both
    requests the answer cache had not seen; K2's parts of the JSON answer timed in this process
    (plan, the whole ``trades()``, encode); and the JSON request asked again.
    """

    json: Series
    arrow: list[float] = field(default_factory=list)
    plan: list[float] = field(default_factory=list)
    query: list[float] = field(default_factory=list)
    encode: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    picks: list[HourPick] = field(default_factory=list)
    expected: list[list[str]] = field(default_factory=list)

    def breakdown(self, lake: Lake) -> Table:
        """Where a Q1 request's time goes, request by request."""
        scan = [q - p for q, p in zip(self.query, self.plan, strict=True)]
        rest = [j - q - e for j, q, e in zip(self.json.k2, self.query, self.encode, strict=True)]
        cells = [
            (f"API, JSON: a request the answer cache had not seen ({len(self.json.k2)} runs)", self.json.k2),
            ("  plan: `engine.scan(TRADES, Selection(…))`, table metadata check + file pruning", self.plan),
            ("  scan: the rest of `trades()` (pieces, merge, slicing): `trades()` minus plan", scan),
            ("  encode: `k2.api.formats.rows_body(page.rows, OutputFormat.JSON)`", self.encode),
            ("  HTTP + framework: the API's time minus the three above (an estimate by difference)", rest),
            ("API, the same request with `format=arrow` (not seen before either)", self.arrow),
            (f"API, JSON, the same request again: an answer-cache hit ({len(self.again)} runs)", self.again),
            (f"Raw DuckDB over all {len(lake.paths)} files (the limit)", self.json.limit),
        ]
        return Table(
            f"{lake.name}: where a Q1 request's time goes (`GET /v1/trades` 1 symbol x 1 hour, "
            f"first {PAGE_ROWS:,} rows)",
            ("Step", "p50 ms", "p99 ms"),
            latency_rows(cells),
        )


@dataclass
class Exports:
    """Rows per second of whole symbol-days: the API's first requests in JSON and Arrow, the same
    requests again, and the limit; and the rows of one.
    """

    json: list[float] = field(default_factory=list)
    arrow: list[float] = field(default_factory=list)
    json_again: list[float] = field(default_factory=list)
    arrow_again: list[float] = field(default_factory=list)
    limit: list[float] = field(default_factory=list)
    rows: int = 0

    def measures(self, label: Callable[[str], str]) -> list[Measure]:
        """JSON and Arrow rows/s of first requests (with their targets) and of repeated ones."""
        export = f"`GET /v1/trades` 1 symbol x 1 day ({self.rows:,} rows), {len(self.json)} runs, median"
        again = "the same request again (answer-cache hit)"
        limit = _median(self.limit)
        return [
            Measure(
                label(f"{export}: JSON rows/s"),
                Unit.ROWS_PER_SECOND,
                _median(self.json),
                limit,
                JSON_EXPORT_TARGET,
            ),
            Measure(
                label(f"{export}: Arrow rows/s"),
                Unit.ROWS_PER_SECOND,
                _median(self.arrow),
                limit,
                ARROW_EXPORT_TARGET,
            ),
            Measure(
                label(f"{export}: JSON rows/s, {again}"),
                Unit.ROWS_PER_SECOND,
                _median(self.json_again),
                limit,
            ),
            Measure(
                label(f"{export}: Arrow rows/s, {again}"),
                Unit.ROWS_PER_SECOND,
                _median(self.arrow_again),
                limit,
            ),
        ]


@dataclass
class Part:
    """What one lake's measurements give the section."""

    measures: list[Measure]
    tables: list[Table]
    notes: list[str]
    caches: list[tuple[str, Lookups]]


class ApiBench:
    """The client, the raw DuckDB database and the picks of one lake's measurements."""

    def __init__(self, sizes: Sizes, lake: Lake, client: Client, con: duckdb.DuckDBPyConnection) -> None:
        self.sizes = sizes
        self.lake = lake
        self.client = client
        self.con = con
        self.rng = random.Random(SEED)
        self.mismatches: list[str] = []
        self.caches: list[tuple[str, Lookups]] = []

    def label(self, text: str) -> str:
        """A measure's label, naming the lake."""
        return f"{self.lake.name}: {text}"

    def check(self, agrees: bool, what: str) -> None:
        """Remember a disagreement between the API and the limit."""
        if not agrees:
            self.mismatches.append(what)

    def counted(self, what: str, measure: Callable[[], T]) -> T:
        """``measure()``, noting the answer cache's look-ups during it as ``what``'s."""
        before = cache_counts(self.client)
        result = measure()
        self.caches.append((self.label(what), (cache_counts(self.client) - before)[ANSWERS]))
        return result

    def series(self, step: Callable[[bool], None], runs: int, space: int | None = None) -> None:
        """Run ``step`` as a latency series: ``runs`` at most, and no more than ``space`` distinct
        picks allow after the warm-up.
        """
        warmup = self.sizes.warmup_runs
        if space is not None:
            runs = distinct_runs(runs, warmup, space, 1)
        repeat(runs, warmup, self.sizes.api_series_seconds, step)

    def warm(self, symbol: str, start: datetime, end: datetime) -> None:
        """Decode the row groups holding ``symbol``'s trades in [start, end), in the server and
        in this process, with a ``limit=1`` request that no series times.
        """
        self.client.get("/v1/trades", hour_params(symbol, start, end, 1))
        trades(self.lake.engine, TickQuery(symbols=(symbol,), start=start, end=end, limit=1))

    def _json_and_arrow(
        self, params: dict[str, str | int], json_first: bool
    ) -> tuple[Reply, float, Reply, float]:
        as_json = partial(self.client.get, "/v1/trades", params)
        in_arrow = partial(self.client.get, "/v1/trades", {**params, "format": "arrow"})
        # The second request finds what the first decoded: take turns being first.
        if json_first:
            reply, json_ms = timed_ms(as_json)
            arrow, arrow_ms = timed_ms(in_arrow)
        else:
            arrow, arrow_ms = timed_ms(in_arrow)
            reply, json_ms = timed_ms(as_json)
        return reply, json_ms, arrow, arrow_ms

    def _in_process(
        self, symbol: str, start: datetime, end: datetime
    ) -> tuple[pa.Table, float, float, float]:
        """K2's part of a Q1 answer in this process: the plan alone, then the whole ``trades()``,
        then the JSON encoding of its rows; the rows and the three times.
        """
        engine = self.lake.engine
        _, plan_ms = timed_ms(partial(engine.scan, TRADES, Selection((symbol,), None, start, end)))
        query = TickQuery(symbols=(symbol,), start=start, end=end, limit=PAGE_ROWS)
        page, query_ms = timed_ms(partial(trades, engine, query))
        _, encode_ms = timed_ms(partial(formats.rows_body, page.rows, OutputFormat.JSON))
        return page.rows, plan_ms, query_ms, encode_ms

    def _raw_ticks(self, symbol: str, start: datetime, end: datetime, limit: int) -> tuple[pa.Table, float]:
        return timed_ms(
            partial(
                raw_queries.ticks, self.con, self.lake.paths, symbol=symbol, start=start, end=end, limit=limit
            )
        )

    def ticks(self) -> Ticks:
        """``GET /v1/trades``, one symbol, one hour, first 5,000 rows, on distinct picks: in JSON,
        in Arrow, and K2's parts of it in this process, after a ``limit=1`` warm-up request.
        """
        space = self.lake.hours
        draw = Draw(space, SEED)
        ticks = Ticks(
            Series(
                self.label(f"`GET /v1/trades` 1 symbol x 1 hour, first {PAGE_ROWS:,} rows (JSON)"),
                TICK_TARGET,
            )
        )

        def step(measured: bool) -> None:
            symbol, start, end = pick = draw()
            self.warm(symbol, start, end)
            params = hour_params(symbol, start, end, PAGE_ROWS)
            reply, json_ms, arrow, arrow_ms = self._json_and_arrow(params, len(ticks.json.k2) % 2 == 0)
            rows, plan_ms, query_ms, encode_ms = self._in_process(symbol, start, end)
            raw, raw_ms = self._raw_ticks(symbol, start, end, PAGE_ROWS)
            expected = ids(raw)
            self.check(
                ids(json_rows(reply)) == expected
                and ids(arrow_rows(arrow)) == expected
                and ids(rows) == expected,
                f"trades of {symbol} from {start:%Y-%m-%d %H:%M} UTC",
            )
            if measured:
                ticks.json.k2.append(json_ms)
                ticks.json.limit.append(raw_ms)
                ticks.arrow.append(arrow_ms)
                ticks.plan.append(plan_ms)
                ticks.query.append(query_ms)
                ticks.encode.append(encode_ms)
                ticks.picks.append(pick)
                ticks.expected.append(expected)

        self.counted(
            "Q1 `GET /v1/trades` 1 symbol x 1 hour: JSON, Arrow and a `limit=1` warm-up per pick",
            partial(self.series, step, self.sizes.tick_query_runs, len(space)),
        )
        self.caches[-1] = (f"{self.caches[-1][0]} ({_picks(draw)})", self.caches[-1][1])
        return ticks

    def again(self, ticks: Ticks) -> None:
        """The timed JSON requests of ``ticks`` asked again, in the same order."""

        def ask() -> None:
            for (symbol, start, end), expected in zip(ticks.picks, ticks.expected, strict=True):
                reply, ms = timed_ms(
                    partial(self.client.get, "/v1/trades", hour_params(symbol, start, end, PAGE_ROWS))
                )
                self.check(
                    ids(json_rows(reply)) == expected,
                    f"trades of {symbol} from {start:%Y-%m-%d %H:%M} UTC again",
                )
                ticks.again.append(ms)

        self.counted("Q1 in JSON, the same requests again", ask)

    def bars(self) -> Series:
        """``POST /v1/aggregations``: one symbol's 1-minute OHLCV and VWAP bars of one day."""
        series = Series(self.label("`POST /v1/aggregations` 1-minute bars, 1 symbol x 1 day"), BARS_TARGET)
        draw = Draw(self.lake.days, SEED)

        def step(measured: bool) -> None:
            pick = draw()
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

        self.counted(
            "`POST /v1/aggregations` 1 symbol x 1 day",
            partial(self.series, step, self.sizes.tick_query_runs, len(self.lake.days)),
        )
        self.caches[-1] = (f"{self.caches[-1][0]} ({_picks(draw)})", self.caches[-1][1])
        return series

    def summaries(self) -> Series:
        """``GET /v1/summary/{symbol}/{day}`` (not kept by the answer cache)."""
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

        self.series(step, self.sizes.summary_runs)
        return series

    def replays(self) -> tuple[Series, Series]:
        """``POST /v1/replay`` of one symbol's day, 1,000 rows a page: the first page, then the
        next pages following the cursor; the limit computes the same page and progress counts
        (replay pages are not kept by the answer cache).
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

        self.series(step, self.sizes.tick_query_runs)
        return first, following

    def raw_throughput(self) -> Throughput:
        """The limit of Q6: the one-hour query from ``api_concurrency.CLIENTS`` threads, each on
        its own DuckDB cursor, for ``Sizes.api_throughput_seconds``, on distinct picks.
        """
        draw = Draw(self.lake.hours, SEED)

        def raw_client(_index: int, deadline: float) -> Throughput:
            done = Throughput()
            cursor = self.con.cursor()
            try:
                while time.perf_counter() < deadline:
                    symbol, start, end = draw()
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

        return concurrently(raw_client, api_concurrency.CLIENTS, self.sizes.api_throughput_seconds)

    def exports(self) -> Exports:
        """``GET /v1/trades`` of one symbol's whole day in one request, in JSON and in Arrow, on
        distinct symbol-days (each after a ``limit=1`` warm-up request), then the same requests
        again; beside DuckDB reading the same rows to Arrow.
        """
        done = Exports()
        picks = Draw(self.lake.days, SEED).take(self.sizes.api_export_runs)
        self.counted(
            "export of 1 symbol x 1 day: JSON and Arrow, first requests", partial(self._exports, picks, done)
        )
        self.counted(
            "export of 1 symbol x 1 day: JSON and Arrow, the same requests again",
            partial(self._exports_again, picks, done),
        )
        return done

    def _exports(self, picks: list[SymbolDay], done: Exports) -> None:
        for pick in picks:
            count = min(pick.trades, EXPORT_ROWS)
            params = hour_params(pick.symbol, pick.start, pick.end, count)
            self.client.get("/v1/trades", {**params, "limit": 1})
            reply, json_ms, arrow, arrow_ms = self._json_and_arrow(params, True)
            raw, raw_ms = self._raw_ticks(pick.symbol, pick.start, pick.end, count)
            expected = ids(raw)
            self.check(
                len(expected) == count
                and ids(json_rows(reply)) == expected
                and ids(arrow_rows(arrow)) == expected,
                f"export of {pick.symbol} on {pick.day}",
            )
            done.json.append(count / json_ms * 1000)
            done.arrow.append(count / arrow_ms * 1000)
            done.limit.append(count / raw_ms * 1000)
            done.rows = count

    def _exports_again(self, picks: list[SymbolDay], done: Exports) -> None:
        for pick in picks:
            count = min(pick.trades, EXPORT_ROWS)
            reply, json_ms, arrow, arrow_ms = self._json_and_arrow(
                hour_params(pick.symbol, pick.start, pick.end, count), True
            )
            self.check(
                int(reply.headers["x-record-count"]) == count and arrow_rows(arrow).num_rows == count,
                f"export of {pick.symbol} on {pick.day} again",
            )
            done.json_again.append(count / json_ms * 1000)
            done.arrow_again.append(count / arrow_ms * 1000)


def _picks(draw: Draw[Any]) -> str:
    return f"{draw.drawn:,} picks drawn from {len(draw.space):,}, {draw.repeats:,} repeating one"


def _median(values: list[float]) -> float:
    return percentile(values, 0.5)


def measure_synthetic(sizes: Sizes, lake: Lake, con: duckdb.DuckDBPyConnection) -> Part:
    """Everything on the synthetic market's lake."""
    with serve(lake.path, "synthetic") as server, Client(server.port) as client:
        bench = ApiBench(sizes, lake, client, con)
        log(f"{TITLE}: {lake.name}: one symbol, one hour (JSON, Arrow, K2 in process, again)")
        ticks = bench.ticks()
        bench.again(ticks)
        log(f"{TITLE}: {lake.name}: one day of 1-minute bars")
        minute = bench.bars()
        log(f"{TITLE}: {lake.name}: daily summary")
        summary = bench.summaries()
        log(f"{TITLE}: {lake.name}: replay")
        first, following = bench.replays()
        log(f"{TITLE}: {lake.name}: export of one symbol-day x {sizes.api_export_runs}, then again")
        exports = bench.exports()
    clients = api_concurrency.CLIENTS
    log(f"{TITLE}: {lake.name}: {clients} clients, 4 x {sizes.api_throughput_seconds:.0f} s, then DuckDB")
    windows = minute_windows(lake.days, lake.venue)
    loads = api_concurrency.measure(lake.path, windows, lake.days, sizes.api_throughput_seconds, SEED)
    limit = bench.raw_throughput()
    measures = [
        *ticks.json.measures(),
        *minute.measures(),
        *summary.measures(),
        *first.measures(),
        *following.measures(),
        *(m for series in loads for m in series.measures(bench.label, limit)),
        *exports.measures(bench.label),
    ]
    notes = [
        _checked(bench),
        *(bench.label(series.note()) for series in loads),
        bench.label(
            f"Q6's limit ran {len(limit.latencies):,} queries from {clients} threads on one DuckDB "
            f"database in {limit.seconds:.1f} s, on distinct picks. Q6's clients share the machine's "
            "2 CPUs with the server; in the benchmark's process they also share its GIL and garbage "
            "collector with everything it holds, which the child process (`python -m "
            "benchmarks.api.load`, nothing else loaded) does not."
        ),
    ]
    return Part(measures, [ticks.breakdown(lake)], notes, bench.caches)


def measure_asx(sizes: Sizes, lake: Lake, con: duckdb.DuckDBPyConnection) -> Part:
    """The single-call latencies on the ASX sample's lake."""
    with serve(lake.path, "asx-sample") as server, Client(server.port) as client:
        bench = ApiBench(sizes, lake, client, con)
        log(f"{TITLE}: {lake.name}: one symbol, one hour; bars; summary; replay")
        ticks = bench.ticks()
        bench.again(ticks)
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
    return Part(measures, [], [_checked(bench)], bench.caches)


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


def _cache_table(parts: list[Part]) -> Table:
    rows: list[tuple[str, ...]] = [(what, str(lookups)) for part in parts for what, lookups in part.caches]
    return Table(
        "The answer cache during each series (its hits and misses on the server's `/metrics`, "
        "before and after the series)",
        ("Series", "Answer cache"),
        rows,
    )


def run(sizes: Sizes) -> Section:
    """Serve each lake and time the API against it."""
    exchange = ensure_lake(sizes)
    settings = K2Settings(data_dir=lake_dir(sizes))
    con = raw_queries.connect(settings.query.threads, settings.query.memory_limit)
    synthetic = Lake.open(f"{sizes.trades / 1e6:g}M trades", lake_dir(sizes), exchange, con)
    rollup = rollup_state(synthetic.engine)
    try:
        first = measure_synthetic(sizes, synthetic, con)
        # Opened only now: the ingest benchmark rewrites this lake when it runs.
        asx = Lake.open("ASX sample", ensure_asx_lake(), "ASX", con)
        try:
            second = measure_asx(sizes, asx, con)
        finally:
            asx.engine.close()
    finally:
        synthetic.engine.close()
        con.close()
    return Section(
        title=f"{TITLE} ({synthetic.name} and the ASX sample)",
        description=(
            f"`k2 serve` (uvicorn, 1 worker, the default settings: {settings.query.threads} DuckDB "
            "threads, the answer cache on) on "
            f"127.0.0.1 over `benchmarks/.data/lakes/{synthetic.path.name}` ({sizes.symbols} symbols x "
            f"{sizes.days} days, {len(synthetic.paths)} trade files; {rollup}) and then over "
            f"`benchmarks/.data/lakes/{asx.path.name}` (the ASX sample: "
            f"{', '.join(sorted({d.symbol for d in asx.days}))} on {len({d.day for d in asx.days})} days "
            f"with {MIN_DAY_TRADES:,}+ trades). A client in the benchmark's process times each request "
            "from sending it to reading the last byte on a keep-alive connection (`http.client`); "
            "the limit is the same query in DuckDB over `read_parquet(<all the table's files>)`, "
            "run alternately with the API's on the same picks. The answer cache serves a request it "
            "has seen before, so the cached series (trades, aggregations, exports) draw distinct "
            "picks (symbol x day x session hour, or symbol x day) until they run out, and their "
            "figures are of requests it had not seen; the same requests asked again are timed apart. "
            "Before each Q1 and export pick, a `limit=1` request of the same range (untimed) has the "
            "server and the benchmark's engine decode its row groups, so the timed requests find the "
            "row-group cache warm and the answer cache cold. A series runs up to "
            f"{sizes.tick_query_runs} times (no more than its distinct picks allow) after "
            f"{sizes.warmup_runs} warm-up runs, but stops after {sizes.api_series_seconds:.0f} s once "
            f"it has {MIN_RUNS}."
        ),
        limit_name="hand-written DuckDB over all the table's files",
        measures=[*first.measures, *second.measures],
        tables=[*first.tables, _cache_table([first, second])],
        notes=[
            *first.notes,
            *second.notes,
            "Where a Q1 request's time goes: on each pick, plan, `trades()` and the JSON encoding are "
            "timed one after the other in the benchmark's process on an engine with the server's "
            "settings; scan is `trades()` minus plan and HTTP + framework is the API's JSON time minus "
            "`trades()` and encode, pick by pick: estimates by difference of two processes' timings, "
            "not a profile of the server.",
            "Latency is the client's wall time per request: p99 is the nearest-rank 99th percentile, "
            "so over fewer than 100 runs it is their maximum. Export rows/s is the symbol-day's rows "
            "over the request's wall time.",
        ],
    )
