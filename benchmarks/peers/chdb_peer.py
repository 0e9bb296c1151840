"""chDB (ClickHouse in this process): the rows in MergeTree tables ``ORDER BY (symbol, timestamp)``
of a session kept in ``benchmarks/.data/chdb-<run>`` (removed on close), queried to Arrow.

chDB is in the ``bench`` dependency group (``uv run --group bench``, ``make bench``): it is
imported when the peer is made, so the other benchmarks run without it. Open and close are an
``argMin``/``argMax`` over K2's order as one Int128 (a tuple key is several times slower);
VWAP is summed in Float64 (Decimal(18, 8) products overflow Decimal64), as K2 does.
"""

from __future__ import annotations

import importlib
import shutil
import time
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import BenchmarkError, fresh_dir, timed_ms
from benchmarks.peers.engine import (
    BAR_SECONDS,
    QUOTE_COLUMNS,
    TRADE_COLUMNS,
    Arrow,
    Engine,
    Loaded,
    SqlEngine,
    Window,
    quoted,
)

TRADES_DDL = """
    CREATE TABLE trades (
        message_id String, symbol LowCardinality(String), exchange LowCardinality(String),
        timestamp DateTime64(6, 'UTC'), price Decimal(18, 8), quantity Decimal(18, 8),
        source_sequence Nullable(Int64)
    ) ENGINE = MergeTree ORDER BY (symbol, timestamp)
"""
QUOTES_DDL = """
    CREATE TABLE quotes (
        symbol LowCardinality(String), exchange LowCardinality(String), timestamp DateTime64(6, 'UTC'),
        source_sequence Nullable(Int64), bid_price Nullable(Decimal(18, 8)), bid_quantity Decimal(18, 8),
        ask_price Nullable(Decimal(18, 8)), ask_quantity Decimal(18, 8)
    ) ENGINE = MergeTree ORDER BY (symbol, timestamp)
"""
TRADE_LIST = ", ".join(TRADE_COLUMNS)
ORDER = "timestamp, ifNull(source_sequence, -1), message_id"
ORDER_KEY = "toInt128(toUnixTimestamp64Micro(timestamp)) * 4294967296 + ifNull(source_sequence, -1)"


def session_class() -> Any:
    """chDB's ``Session``.

    Raises:
        BenchmarkError: when chDB is not installed.
    """
    try:
        return importlib.import_module("chdb.session").Session
    except ImportError as error:
        raise BenchmarkError(
            "chDB is in the `bench` dependency group: run `make bench` or `uv run --group bench …`"
        ) from error


def chdb_version() -> str:
    """The installed chDB package's version."""
    try:
        return version("chdb")
    except PackageNotFoundError:
        return "?"


def instant(value: datetime) -> str:
    """A UTC instant as a DateTime64(6) literal."""
    return f"toDateTime64('{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"


class ClickHouseSql:
    """The queries in ClickHouse's SQL, capped at ``threads`` threads."""

    def __init__(self, threads: int) -> None:
        self.settings = f"SETTINGS max_threads = {threads}"

    @staticmethod
    def _range(window: Window, start: datetime | None = None) -> str:
        return (
            f"symbol = {quoted(window.symbol)} AND timestamp >= {instant(start or window.start)} "
            f"AND timestamp < {instant(window.end)}"
        )

    def _first_trades(self, window: Window) -> str:
        where = self._range(window)
        return f"SELECT {TRADE_LIST} FROM trades WHERE {where} ORDER BY {ORDER} LIMIT {window.limit}"

    def trades(self, window: Window) -> str:
        """Q1 and Q5."""
        return f"{self._first_trades(window)} {self.settings}"

    def bars(self, window: Window | None) -> str:
        """Q2 and Q3."""
        where = "1" if window is None else self._range(window)
        return f"""
            SELECT symbol, exchange, toDateTime64(bucket, 6, 'UTC') AS interval_start,
                   argMin(price, k) AS open, max(price) AS high, min(price) AS low, argMax(price, k) AS close,
                   sum(quantity) AS volume, count() AS trade_count,
                   round(sum(toFloat64(price) * toFloat64(quantity)) / toFloat64(volume), 8) AS vwap
            FROM (SELECT symbol, exchange, price, quantity, {ORDER_KEY} AS k,
                         toStartOfInterval(timestamp, INTERVAL {BAR_SECONDS} SECOND) AS bucket
                  FROM trades WHERE {where})
            GROUP BY symbol, exchange, bucket
            ORDER BY symbol, exchange, bucket
            {self.settings}
        """

    def with_quotes(self, window: Window) -> str:
        """Q4: of several quotes at one instant, ``LIMIT 1 BY`` keeps the highest sequence."""
        return f"""
            WITH t AS ({self._first_trades(window)}),
            q AS (
                SELECT symbol, exchange, timestamp AS quote_timestamp, bid_price, bid_quantity,
                       ask_price, ask_quantity
                FROM quotes WHERE {self._range(window, window.quotes_from)}
                ORDER BY timestamp, ifNull(source_sequence, -1) DESC
                LIMIT 1 BY timestamp
            )
            SELECT t.message_id AS message_id, t.symbol AS symbol, t.exchange AS exchange,
                   t.timestamp AS timestamp, t.price AS price, t.quantity AS quantity,
                   t.source_sequence AS source_sequence, q.quote_timestamp AS quote_timestamp,
                   q.bid_price AS bid_price, q.bid_quantity AS bid_quantity,
                   q.ask_price AS ask_price, q.ask_quantity AS ask_quantity
            FROM t ASOF LEFT JOIN q
              ON t.symbol = q.symbol AND t.exchange = q.exchange AND t.timestamp >= q.quote_timestamp
            ORDER BY t.timestamp, ifNull(t.source_sequence, -1), t.message_id
            {self.settings}, join_use_nulls = 1
        """

    def all_quotes(self) -> str:
        """Q4 full: every trade, the quotes deduplicated per (symbol, exchange, instant) as in Q4."""
        return f"""
            SELECT count() AS trades, count(q.quote_timestamp) AS matched,
                   sum(q.bid_price) AS bid_sum, sum(q.ask_price) AS ask_sum
            FROM trades AS t ASOF LEFT JOIN (
                SELECT symbol, exchange, timestamp AS quote_timestamp, bid_price, ask_price
                FROM quotes
                ORDER BY symbol, exchange, timestamp, ifNull(source_sequence, -1) DESC
                LIMIT 1 BY symbol, exchange, timestamp
            ) AS q
              ON t.symbol = q.symbol AND t.exchange = q.exchange AND t.timestamp >= q.quote_timestamp
            {self.settings}, join_use_nulls = 1
        """


class ChDbPeer:
    """A chDB session with the trades and quotes in MergeTree tables."""

    def __init__(self, root: Path, threads: int) -> None:
        self.name = f"chDB {chdb_version()}"
        self.root = fresh_dir(root)
        self.session = session_class()(str(root / "db"))
        self.sql = ClickHouseSql(threads)
        self.threads = threads

    def describe(self) -> str:
        """How it was run, loaded and asked."""
        core = getattr(importlib.import_module("chdb"), "__version__", "?")
        return (
            f"in this process (ClickHouse engine {core}), a session kept under `benchmarks/.data/"
            f"chdb-<run>` (removed after the run) with MergeTree tables `ORDER BY (symbol, timestamp)`, "
            "loaded from a Parquet file of each table (`INSERT … SELECT … FROM file()`, then "
            f"`OPTIMIZE TABLE … FINAL`); every query `SETTINGS max_threads = {self.threads}`. Open and "
            "close are `argMin`/`argMax` over K2's order as one Int128 (timestamp µs x 2^32 + "
            "sequence), VWAP summed in Float64 (Decimal(18, 8) products overflow); Q4 is an `ASOF LEFT "
            "JOIN` (`join_use_nulls = 1`) on the quotes left by `LIMIT 1 BY timestamp` after ordering "
            "by sequence descending (Q4 full: the same over both whole tables, `LIMIT 1 BY symbol, "
            "exchange, timestamp`). Answers as `ArrowTable`."
        )

    def _query(self, sql: str) -> Arrow:
        return Arrow(self.session.query(sql, "ArrowTable"))

    def load(self, trades: pa.Table, quotes: pa.Table) -> Loaded:
        """Write each table as a Parquet file, insert it, then merge each table's parts."""
        started = time.perf_counter()
        file_ms = 0.0
        for name, rows, ddl, columns in (
            ("trades", trades, TRADES_DDL, TRADE_COLUMNS),
            ("quotes", quotes, QUOTES_DDL, QUOTE_COLUMNS),
        ):
            path = self.root / f"{name}.parquet"
            _, ms = timed_ms(partial(pq.write_table, rows, path, compression="snappy"))
            file_ms += ms
            self.session.query(ddl)
            listed = ", ".join(columns)
            self.session.query(f"INSERT INTO {name} ({listed}) SELECT {listed} FROM file('{path}', Parquet)")
            self.session.query(f"OPTIMIZE TABLE {name} FINAL")
            path.unlink()
        return Loaded(
            time.perf_counter() - started,
            "Parquet file (snappy) → `INSERT … SELECT` → `OPTIMIZE … FINAL`",
            file_ms / 1000,
        )

    def engines(self) -> dict[str, Engine]:
        """The session, asked in ClickHouse's SQL."""
        return {"": SqlEngine(self.sql, self._query)}

    def close(self) -> None:
        """Close the session and remove its data."""
        self.session.close()
        shutil.rmtree(self.root, ignore_errors=True)
