"""Trades with the quote that prevailed when they printed (an as-of join), like kdb's ``aj``."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from k2.lake.errors import TableNotFoundError
from k2.lake.tables import QUOTES
from k2.query.engine import CURRENT, AsOf, QueryEngine, Selection

QUOTE_COLUMNS = pa.schema(
    [
        pa.field("quote_timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("bid_price", pa.decimal128(18, 8)),
        pa.field("bid_quantity", pa.decimal128(18, 8)),
        pa.field("ask_price", pa.decimal128(18, 8)),
        pa.field("ask_quantity", pa.decimal128(18, 8)),
        pa.field("mid_price", pa.decimal128(18, 8)),
        pa.field("spread", pa.decimal128(18, 8)),
    ]
)


def with_prevailing_quotes(
    engine: QueryEngine, trades: pa.Table, tolerance: timedelta, as_of: AsOf = CURRENT
) -> pa.Table:
    """``trades`` plus the last quote of the same symbol and exchange at or before each trade,
    if it is at most ``tolerance`` older; its columns are null otherwise.

    ``spread`` is ask minus bid and may be zero or negative while the book is locked or crossed
    (auctions); ``mid_price`` is their mean. Quotes are read at ``as_of`` when it names a time or
    a tag, otherwise at the quotes table's current snapshot (snapshot ids belong to one table).
    """
    if trades.num_rows == 0:
        return _append_empty(trades)
    quotes_as_of = AsOf(time=as_of.time, tag=as_of.tag) if as_of.snapshot_id is None else AsOf()
    symbols = tuple(sorted(set(trades["symbol"].to_pylist())))
    bounds = pc.min_max(trades["timestamp"])
    start = bounds["min"].as_py() - tolerance
    end = bounds["max"].as_py() + timedelta(microseconds=1)
    try:
        selection = Selection(symbols, None, start, end)
        scan = engine.scan(QUOTES, selection, quotes_as_of)
    except TableNotFoundError:
        return _append_empty(trades)
    if not scan.paths:
        return _append_empty(trades)
    params: dict[str, object] = {"paths": scan.paths, "tolerance_us": int(tolerance.total_seconds() * 1e6)}
    where = selection.where_sql(params)
    cursor = engine.cursor()
    try:
        cursor.register(
            "page", trades.append_column("__k2_row", pa.array(range(trades.num_rows), pa.int64()))
        )
        joined = cursor.sql(
            f"""
            WITH q AS (
                SELECT symbol, exchange, timestamp AS quote_timestamp, coalesce(source_sequence, -1) AS seq,
                       bid_price, bid_quantity, ask_price, ask_quantity
                FROM {scan.source_sql} WHERE {where}
            ), latest AS (  -- of several quotes at one instant, the last in sequence prevails
                SELECT * FROM q QUALIFY row_number() OVER (
                    PARTITION BY symbol, exchange, quote_timestamp ORDER BY seq DESC) = 1
            ), matched AS (
                SELECT p.__k2_row, l.* EXCLUDE (symbol, exchange, seq)
                FROM page p ASOF LEFT JOIN latest l
                  ON p.symbol = l.symbol AND p.exchange = l.exchange AND p.timestamp >= l.quote_timestamp
            )
            SELECT __k2_row,
                   CASE WHEN ok THEN quote_timestamp END AS quote_timestamp,
                   CASE WHEN ok THEN bid_price END AS bid_price,
                   CASE WHEN ok THEN bid_quantity END AS bid_quantity,
                   CASE WHEN ok THEN ask_price END AS ask_price,
                   CASE WHEN ok THEN ask_quantity END AS ask_quantity,
                   CASE WHEN ok THEN CAST((bid_price + ask_price) / 2 AS DECIMAL(18, 8)) END AS mid_price,
                   CASE WHEN ok THEN CAST(ask_price - bid_price AS DECIMAL(18, 8)) END AS spread
            FROM (SELECT m.*, epoch_us(p.timestamp) - epoch_us(m.quote_timestamp) <= $tolerance_us AS ok
                  FROM matched m JOIN page p USING (__k2_row))
            ORDER BY __k2_row
            """,
            params=params,
        ).to_arrow_table()
    finally:
        cursor.close()
    result = trades
    for field in QUOTE_COLUMNS:
        result = result.append_column(field, joined[field.name].cast(field.type))
    return result


def _append_empty(trades: pa.Table) -> pa.Table:
    result = trades
    for field in QUOTE_COLUMNS:
        result = result.append_column(field, pa.nulls(trades.num_rows, field.type))
    return result
