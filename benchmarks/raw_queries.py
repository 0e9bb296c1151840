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

RANGE = "symbol = $symbol AND timestamp >= $start AND timestamp < $end"
ORDER = "ORDER BY timestamp, coalesce(source_sequence, -1), message_id"
# K2's row order as one comparable key; a replay page starts after the previous page's last key.
KEY = "(epoch_us(timestamp), coalesce(source_sequence, -1), message_id)"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TICKS_SQL = f"""
    SELECT * FROM {SOURCE}
    WHERE {RANGE}
    {ORDER}
    LIMIT $limit
"""
REPLAY_NEXT_SQL = f"""
    SELECT * FROM {SOURCE}
    WHERE {RANGE} AND {KEY} > ($after_ts, $after_seq, $after_id)
    {ORDER}
    LIMIT $limit
"""
REPLAY_PROGRESS_SQL = f"""
    SELECT count(*) AS total, count(*) FILTER (WHERE {KEY} <= ($ts, $seq, $id)) AS delivered
    FROM {SOURCE} WHERE {RANGE}
"""


def _minute_bars_sql(where: str) -> str:
    # One-minute buckets of UTC time are one-minute buckets of venue time for every venue whose
    # UTC offset is a whole number of minutes, so this needs no time zone lookup.
    return f"""
    SELECT symbol, exchange,
           make_timestamptz(epoch_us(timestamp) // 60000000 * 60000000) AS interval_start,
           arg_min(price, {FIRST}) AS open, max(price) AS high, min(price) AS low,
           arg_max(price, {FIRST}) AS close, sum(quantity) AS volume, count(*) AS trade_count,
           CAST(round(sum(CAST(price AS DECIMAL(38, 8)) * quantity) / sum(quantity), 8)
                AS DECIMAL(18, 8)) AS vwap
    FROM {SOURCE}
    WHERE {where}
    GROUP BY ALL
    ORDER BY symbol, exchange, interval_start
"""


MINUTE_BARS_SQL = _minute_bars_sql("TRUE")
SYMBOL_MINUTE_BARS_SQL = _minute_bars_sql(RANGE)

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


def symbol_minute_bars(
    con: duckdb.DuckDBPyConnection, paths: list[str], *, symbol: str, start: datetime, end: datetime
) -> pa.Table:
    """One-minute OHLCV bars of one symbol's trades in [start, end)."""
    params = {"paths": paths, "symbol": symbol, "start": start, "end": end}
    return con.sql(SYMBOL_MINUTE_BARS_SQL, params=params).to_arrow_table()


Key = tuple[int, int, str]


def replay_page(
    con: duckdb.DuckDBPyConnection,
    paths: list[str],
    *,
    symbol: str,
    start: datetime,
    end: datetime,
    limit: int,
    after: Key | None = None,
) -> tuple[pa.Table, Key | None, int, int]:
    """One page of a replay of one symbol's trades in [start, end): the ``limit`` rows after the
    key ``after`` (epoch microseconds, source sequence or -1, message id; None: from the start),
    the page's last key, and how many rows of the range it delivers through and holds in all.
    """
    params: dict[str, object] = {"paths": paths, "symbol": symbol, "start": start, "end": end}
    if after is None:
        rows = con.sql(TICKS_SQL, params={**params, "limit": limit}).to_arrow_table()
    else:
        ts, seq, message_id = after
        cursor = {"after_ts": ts, "after_seq": seq, "after_id": message_id, "limit": limit}
        rows = con.sql(REPLAY_NEXT_SQL, params={**params, **cursor}).to_arrow_table()
    if not rows.num_rows:
        # Nothing left: the replay has delivered the whole range.
        total = con.sql(f"SELECT count(*) FROM {SOURCE} WHERE {RANGE}", params=params).fetchall()[0][0]
        return rows, after, int(total), int(total)
    last = rows.slice(rows.num_rows - 1, 1).to_pylist()[0]
    sequence = last["source_sequence"]
    micros = (last["timestamp"] - EPOCH) // timedelta(microseconds=1)
    key = (micros, -1 if sequence is None else int(sequence), str(last["message_id"]))
    progress = con.sql(REPLAY_PROGRESS_SQL, params={**params, "ts": key[0], "seq": key[1], "id": key[2]})
    total, delivered = progress.fetchall()[0]
    return rows, key, int(delivered), int(total)


def day_summary(
    con: duckdb.DuckDBPyConnection, paths: list[str], *, symbol: str, exchange: str, day: date, zone: ZoneInfo
) -> pa.Table:
    """One symbol's OHLCV over the venue-local calendar ``day``."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    params = {"paths": paths, "symbol": symbol, "exchange": exchange, "start": start, "end": end}
    return con.sql(DAY_SQL, params=params).to_arrow_table()
