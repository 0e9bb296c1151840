"""OHLCV bars and daily summaries computed from trades.

Buckets follow each venue's wall clock: a 1h bar starts on the venue's local hour and a 1d bar
is the venue's local calendar day, so an ASX daily bar is the Sydney trading day. Open and close
are the first and last trades by (timestamp, source_sequence), so same-millisecond prints keep
their exchange order. Prices stay decimal; VWAP is rounded to 8 decimal places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa

from k2.domain.bars import Interval
from k2.domain.time import local_day_bounds
from k2.domain.venues import VENUES, venue
from k2.lake.tables import TRADES
from k2.query.engine import CURRENT, AsOf, QueryEngine
from k2.query.errors import InvalidQueryError
from k2.query.ticks import pushdown_filter, where_sql

UTC_ZONE = ZoneInfo("UTC")

BAR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("interval_start", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("interval_end", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("open", pa.decimal128(18, 8), nullable=False),
        pa.field("high", pa.decimal128(18, 8), nullable=False),
        pa.field("low", pa.decimal128(18, 8), nullable=False),
        pa.field("close", pa.decimal128(18, 8), nullable=False),
        pa.field("volume", pa.decimal128(38, 8), nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("vwap", pa.decimal128(18, 8), nullable=True),
        pa.field("first_trade", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("last_trade", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True, slots=True)
class BarQuery:
    """Bars of ``interval`` for the symbols (all if empty) between ``start`` and ``end``."""

    interval: Interval
    symbols: tuple[str, ...] = ()
    exchange: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    as_of: AsOf = field(default=CURRENT)

    def __post_init__(self) -> None:
        if self.start and self.end and self.start >= self.end:
            raise InvalidQueryError("start must be before end")


@dataclass(frozen=True, slots=True)
class DailySummary:
    """One symbol's trading day on its venue."""

    symbol: str
    exchange: str
    day: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trade_count: int
    vwap: Decimal | None
    first_trade: datetime
    last_trade: datetime


def _zones_table() -> pa.Table:
    return pa.table(
        {"exchange": [v.code for v in VENUES.values()], "zone": [v.timezone for v in VENUES.values()]}
    )


def _bars_sql(source: str, where: str, seconds: int) -> str:
    # Offsets change only on whole UTC hours for the venues K2 knows, so the local time of a
    # trade is its UTC time plus the offset of its UTC hour, looked up once per distinct hour.
    return f"""
        WITH t AS (
            SELECT symbol, exchange, timestamp, price, quantity,
                   coalesce(source_sequence, -1) AS seq, date_trunc('hour', timestamp) AS utc_hour
            FROM {source} WHERE {where}
        ), offsets AS (
            SELECT h.exchange, h.utc_hour, z.zone,
                   timezone(z.zone, h.utc_hour) - CAST(h.utc_hour AS TIMESTAMP) AS offset
            FROM (SELECT DISTINCT exchange, utc_hour FROM t) h JOIN zones z USING (exchange)
        ), bucketed AS (
            SELECT t.*, o.zone,
                   time_bucket(INTERVAL ($seconds) SECOND, CAST(t.timestamp AS TIMESTAMP) + o.offset,
                               TIMESTAMP '2000-01-01') AS local_start
            FROM t JOIN offsets o USING (exchange, utc_hour)
        ), bars AS (
            SELECT symbol, exchange, any_value(zone) AS zone, local_start,
                   arg_min(price, {{'t': timestamp, 's': seq}}) AS open, max(price) AS high,
                   min(price) AS low, arg_max(price, {{'t': timestamp, 's': seq}}) AS close,
                   sum(quantity) AS volume, count(*) AS trade_count,
                   sum(CAST(price AS DECIMAL(38, 8)) * quantity) AS notional, min(timestamp) AS first_trade,
                   max(timestamp) AS last_trade
            FROM bucketed GROUP BY symbol, exchange, local_start
        )
        SELECT symbol, exchange,
               timezone(zone, local_start) AS interval_start,
               timezone(zone, local_start + INTERVAL ($seconds) SECOND) AS interval_end,
               open, high, low, close, CAST(volume AS DECIMAL(38, 8)) AS volume, trade_count,
               CASE WHEN volume > 0 THEN CAST(round(notional / volume, 8) AS DECIMAL(18, 8)) END AS vwap,
               first_trade, last_trade
        FROM bars ORDER BY symbol, exchange, interval_start
    """


def bars(engine: QueryEngine, query: BarQuery) -> pa.Table:
    """OHLCV bars, one row per symbol, exchange and bucket that has trades.

    Raises:
        TableNotFoundError: when no trades were ever loaded.
        SnapshotNotFoundError: for an unknown ``as_of``.
    """
    symbols = tuple(sorted({s.upper() for s in query.symbols}))
    scan = engine.scan(TRADES, pushdown_filter(symbols, query.exchange, query.start, query.end), query.as_of)
    if not scan.paths:
        return BAR_SCHEMA.empty_table()
    params: dict[str, object] = {"paths": scan.paths, "seconds": query.interval.seconds}
    where = where_sql(symbols, query.exchange, query.start, query.end, params)
    cursor = engine.cursor()
    try:
        cursor.register("zones", _zones_table())
        return (
            cursor.sql(_bars_sql(scan.source_sql, where, query.interval.seconds), params=params)
            .to_arrow_table()
            .cast(BAR_SCHEMA)
        )
    finally:
        cursor.close()


def daily_summary(
    engine: QueryEngine, symbol: str, day: date, exchange: str | None = None, as_of: AsOf = CURRENT
) -> DailySummary | None:
    """Open, high, low, close, volume, trade count and VWAP of ``symbol`` on the venue-local
    calendar ``day``; None when it did not trade that day.

    Raises:
        NotFoundError: for an unknown exchange.
        TableNotFoundError: when no trades were ever loaded.
    """
    if exchange:
        start, end = local_day_bounds(day, venue(exchange).zone)
    else:
        # Any venue's local day lies within UTC-12..UTC+14 of the UTC day.
        utc_start, utc_end = local_day_bounds(day, UTC_ZONE)
        start, end = utc_start - timedelta(hours=14), utc_end + timedelta(hours=12)
    rows = bars(
        engine,
        BarQuery(Interval(1, "d"), symbols=(symbol,), exchange=exchange, start=start, end=end, as_of=as_of),
    )
    for bar in rows.to_pylist():
        if bar["interval_start"].astimezone(venue(bar["exchange"]).zone).date() != day:
            continue
        return DailySummary(
            symbol=bar["symbol"],
            exchange=bar["exchange"],
            day=day,
            open=bar["open"],
            high=bar["high"],
            low=bar["low"],
            close=bar["close"],
            volume=bar["volume"],
            trade_count=bar["trade_count"],
            vwap=bar["vwap"],
            first_trade=bar["first_trade"],
            last_trade=bar["last_trade"],
        )
    return None
