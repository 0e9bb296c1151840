"""DuckDB over native tables: the rows copied into an in-memory database sorted by symbol and
timestamp (``CREATE TABLE … AS SELECT … ORDER BY``), with K2's engine settings (threads, memory
limit, UTC), queried from Python to Arrow with every value bound as a parameter.
"""

from __future__ import annotations

import time

import duckdb
import pyarrow as pa

from benchmarks import raw_queries
from benchmarks.peers.engine import BAR_SECONDS, QUOTE_COLUMNS, TRADE_COLUMNS, Arrow, Engine, Loaded, Window

NAME = f"DuckDB {duckdb.__version__} native table"
TRADE_LIST = ", ".join(TRADE_COLUMNS)
ORDER = "timestamp, coalesce(source_sequence, -1), message_id"
RANGE = "symbol = $symbol AND timestamp >= $start AND timestamp < $end"
FIRST_TRADES = f"SELECT {TRADE_LIST} FROM trades WHERE {RANGE} ORDER BY {ORDER} LIMIT $limit"
# K2's order as one number, so open and close are an arg_min / arg_max over a plain key.
ORDER_KEY = "CAST(epoch_us(timestamp) AS HUGEINT) * 4294967296 + coalesce(source_sequence, -1)"


def _bars_sql(where: str) -> str:
    return f"""
        SELECT symbol, exchange, interval_start,
               arg_min(price, k) AS open, max(price) AS high, min(price) AS low, arg_max(price, k) AS close,
               sum(quantity) AS volume, count(*) AS trade_count,
               round(sum(CAST(price AS DOUBLE) * CAST(quantity AS DOUBLE)) / CAST(sum(quantity) AS DOUBLE), 8)
                   AS vwap
        FROM (SELECT symbol, exchange, price, quantity, {ORDER_KEY} AS k,
                     time_bucket(INTERVAL {BAR_SECONDS} SECOND, timestamp) AS interval_start
              FROM trades WHERE {where})
        GROUP BY symbol, exchange, interval_start
        ORDER BY symbol, exchange, interval_start
    """


BARS = _bars_sql(RANGE)
ALL_BARS = _bars_sql("TRUE")
WITH_QUOTES = f"""
    WITH t AS ({FIRST_TRADES}),
    q AS (
        SELECT symbol, exchange, timestamp AS quote_timestamp,
               bid_price, bid_quantity, ask_price, ask_quantity
        FROM quotes WHERE symbol = $symbol AND timestamp >= $quotes_from AND timestamp < $end
        QUALIFY row_number() OVER (PARTITION BY timestamp ORDER BY coalesce(source_sequence, -1) DESC) = 1
    )
    SELECT t.*, q.quote_timestamp, q.bid_price, q.bid_quantity, q.ask_price, q.ask_quantity
    FROM t ASOF LEFT JOIN q
      ON t.symbol = q.symbol AND t.exchange = q.exchange AND t.timestamp >= q.quote_timestamp
    ORDER BY t.timestamp, coalesce(t.source_sequence, -1), t.message_id
"""


# Q4 full: every trade with the last quote at or before it, of several at one instant the one
# with the highest sequence, summed up as CHECKSUM.
ALL_QUOTES = """
    WITH q AS (
        SELECT symbol, exchange, timestamp AS quote_timestamp, bid_price, ask_price
        FROM quotes
        QUALIFY row_number() OVER (
            PARTITION BY symbol, exchange, timestamp ORDER BY coalesce(source_sequence, -1) DESC
        ) = 1
    )
    SELECT count(*) AS trades, count(q.quote_timestamp) AS matched,
           sum(q.bid_price) AS bid_sum, sum(q.ask_price) AS ask_sum
    FROM trades t ASOF LEFT JOIN q
      ON t.symbol = q.symbol AND t.exchange = q.exchange AND t.timestamp >= q.quote_timestamp
"""


def _params(window: Window) -> dict[str, object]:
    return {"symbol": window.symbol, "start": window.start, "end": window.end, "limit": window.limit}


class DuckDbPeer:
    """An in-memory DuckDB database with the trades and quotes as native tables."""

    name = NAME

    def __init__(self, threads: int, memory_limit: str) -> None:
        self.con = raw_queries.connect(threads, memory_limit)
        self.threads, self.memory_limit = threads, memory_limit

    def describe(self) -> str:
        """How it was run, loaded and asked."""
        return (
            f"an in-memory database with K2's engine settings ({self.threads} threads, memory limit "
            f"{self.memory_limit}, UTC); `CREATE TABLE … AS SELECT … ORDER BY symbol, timestamp` from "
            "the Arrow tables. Open and close are `arg_min`/`arg_max` over K2's order as one HUGEINT "
            "(timestamp µs x 2^32 + sequence), VWAP summed in DOUBLE as K2 does; Q4 is an `ASOF LEFT "
            "JOIN` on the quotes left after keeping the highest sequence per instant (`QUALIFY "
            "row_number()`), Q4 full the same over both whole tables. Asked from Python with bound "
            "parameters, answers to Arrow."
        )

    def load(self, trades: pa.Table, quotes: pa.Table) -> Loaded:
        """Copy both tables in, sorted by symbol and timestamp."""
        started = time.perf_counter()
        for name, rows, columns in (("trades", trades, TRADE_COLUMNS), ("quotes", quotes, QUOTE_COLUMNS)):
            self.con.register(f"arrow_{name}", rows)
            self.con.execute(
                f"CREATE TABLE {name} AS SELECT {', '.join(columns)} FROM arrow_{name} "
                "ORDER BY symbol, timestamp"
            )
            self.con.unregister(f"arrow_{name}")
        return Loaded(time.perf_counter() - started, "`CREATE TABLE … AS SELECT … ORDER BY` from Arrow")

    def engines(self) -> dict[str, Engine]:
        """Itself: one way of being asked."""
        return {"": self}

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    def _arrow(self, sql: str, params: dict[str, object]) -> Arrow:
        return Arrow(self.con.sql(sql, params=params).to_arrow_table())

    def trades(self, window: Window) -> Arrow:
        """Q1 and Q5."""
        return self._arrow(FIRST_TRADES, _params(window))

    def bars(self, window: Window | None) -> Arrow:
        """Q2 and Q3."""
        if window is None:
            return self._arrow(ALL_BARS, {})
        params = _params(window)
        del params["limit"]
        return self._arrow(BARS, params)

    def with_quotes(self, window: Window) -> Arrow:
        """Q4."""
        return self._arrow(WITH_QUOTES, {**_params(window), "quotes_from": window.quotes_from})

    def all_quotes(self) -> Arrow:
        """Q4 full."""
        return self._arrow(ALL_QUOTES, {})
