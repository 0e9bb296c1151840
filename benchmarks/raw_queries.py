"""The query limit: K2's queries written by hand in DuckDB over the table's Parquet files, with no
Iceberg planning. Each gives the same rows as K2's query on the benchmark's data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

SOURCE = "read_parquet($paths, hive_partitioning = false)"
FIRST = "{'t': timestamp, 's': coalesce(source_sequence, -1)}"

TICKS_SQL = f"""
    SELECT * FROM {SOURCE}
    WHERE symbol = $symbol AND timestamp >= $start AND timestamp < $end
    ORDER BY timestamp, coalesce(source_sequence, -1), message_id
    LIMIT $limit
"""

# One-minute buckets of UTC time are one-minute buckets of venue time for every venue whose UTC
# offset is a whole number of minutes, so this needs no time zone lookup.
MINUTE_BARS_SQL = f"""
    SELECT symbol, exchange,
           make_timestamptz(epoch_us(timestamp) // 60000000 * 60000000) AS interval_start,
           arg_min(price, {FIRST}) AS open, max(price) AS high, min(price) AS low,
           arg_max(price, {FIRST}) AS close, sum(quantity) AS volume, count(*) AS trade_count,
           CAST(round(sum(CAST(price AS DECIMAL(38, 8)) * quantity) / sum(quantity), 8)
                AS DECIMAL(18, 8)) AS vwap
    FROM {SOURCE}
    GROUP BY ALL
    ORDER BY symbol, exchange, interval_start
"""

DAY_SQL = f"""
    SELECT arg_min(price, {FIRST}) AS open, max(price) AS high, min(price) AS low,
           arg_max(price, {FIRST}) AS close, sum(quantity) AS volume, count(*) AS trade_count,
           CAST(round(sum(CAST(price AS DECIMAL(38, 8)) * quantity) / sum(quantity), 8)
                AS DECIMAL(18, 8)) AS vwap
    FROM {SOURCE}
    WHERE symbol = $symbol AND exchange = $exchange AND timestamp >= $start AND timestamp < $end
"""


def connect(threads: int, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB database set up as well as K2's query engine could be: its threads and memory
    limit, UTC, and Parquet footers cached (data files are immutable).
    """
    con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET parquet_metadata_cache = true")
    return con


def ticks(
    con: duckdb.DuckDBPyConnection,
    paths: list[str],
    *,
    symbol: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> pa.Table:
    """One symbol's trades in [start, end), first ``limit`` rows in K2's order."""
    params = {"paths": paths, "symbol": symbol, "start": start, "end": end, "limit": limit}
    return con.sql(TICKS_SQL, params=params).to_arrow_table()


def minute_bars(con: duckdb.DuckDBPyConnection, paths: list[str]) -> pa.Table:
    """One-minute OHLCV bars of every symbol over all the files."""
    return con.sql(MINUTE_BARS_SQL, params={"paths": paths}).to_arrow_table()


def day_summary(
    con: duckdb.DuckDBPyConnection, paths: list[str], *, symbol: str, exchange: str, day: date, zone: ZoneInfo
) -> pa.Table:
    """One symbol's OHLCV over the venue-local calendar ``day``."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    params = {"paths": paths, "symbol": symbol, "exchange": exchange, "start": start, "end": end}
    return con.sql(DAY_SQL, params=params).to_arrow_table()
