"""OHLCV bars and daily summaries computed from trades.

Buckets follow each venue's wall clock: a 1h bar starts on the venue's local hour and a 1d bar
is the venue's local calendar day, so an ASX daily bar is the Sydney trading day. Open and close
are the first and last trades by (timestamp, source_sequence), so same-millisecond prints keep
their exchange order. Prices stay decimal; VWAP is rounded to 8 decimal places.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa

from k2.domain.bars import Interval
from k2.domain.time import local_day_bounds
from k2.domain.venues import VENUES, venue
from k2.lake.tables import TRADES
from k2.query.engine import CURRENT, AsOf, QueryEngine, Selection
from k2.query.errors import InvalidQueryError

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

    @property
    def selection(self) -> Selection:
        """The trades the bars are made of (symbols upper-cased, each once, sorted)."""
        return Selection(
            tuple(sorted({s.upper() for s in self.symbols})), self.exchange, self.start, self.end
        )


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


# Exact (timestamp, sequence) order as one comparable number, so open/close are cheap to find.
_ORDER_KEY = "CAST(epoch_us(timestamp) AS HUGEINT) * 4294967296 + coalesce(source_sequence, -1)"
# VWAP is summed in double precision (exact enough for 8 decimals, far faster than 128-bit
# decimals); volume stays an exact decimal.
_AGGREGATES = """
    arg_min(price, order_key) AS open, max(price) AS high, min(price) AS low,
    arg_max(price, order_key) AS close, sum(quantity) AS volume, count(*) AS trade_count,
    sum(CAST(price AS DOUBLE) * CAST(quantity AS DOUBLE)) AS notional,
    min(timestamp) AS first_trade, max(timestamp) AS last_trade
"""
_OUTPUTS = """
    open, high, low, close, CAST(volume AS DECIMAL(38, 8)) AS volume, trade_count,
    CASE WHEN volume > 0 THEN CAST(round(notional / CAST(volume AS DOUBLE), 8) AS DECIMAL(18, 8)) END AS vwap,
    first_trade, last_trade
"""


def _utc_bars_sql(source: str, where: str) -> str:
    """Buckets counted from UTC midnight: the same buckets as the venue's clock when the
    interval divides an hour and the venue's offset is a whole number of hours.
    """
    return f"""
        WITH t AS (
            SELECT symbol, exchange, timestamp, price, quantity, {_ORDER_KEY} AS order_key,
                   time_bucket(INTERVAL ($seconds) SECOND, timestamp) AS interval_start
            FROM {source} WHERE {where}
        ), bars AS (
            SELECT symbol, exchange, interval_start, {_AGGREGATES}
            FROM t GROUP BY symbol, exchange, interval_start
        )
        SELECT symbol, exchange, interval_start, interval_start + INTERVAL ($seconds) SECOND AS interval_end,
               {_OUTPUTS}
        FROM bars ORDER BY symbol, exchange, interval_start
    """


def _hourly_local_bars_sql(source: str, where: str) -> str:
    """Buckets of whole venue-local hours (1h … 1d) at venues with whole-hour offsets.

    Trades are first aggregated per UTC hour, which needs no time zone; only those partial bars
    are mapped to the venue's clock (a UTC hour lies inside one local bucket) and combined.
    """
    return f"""
        WITH t AS (
            SELECT symbol, exchange, timestamp, price, quantity, {_ORDER_KEY} AS order_key,
                   date_trunc('hour', timestamp) AS utc_hour
            FROM {source} WHERE {where}
        ), hourly AS (
            SELECT symbol, exchange, utc_hour, min(order_key) AS first_key, max(order_key) AS last_key,
                   {_AGGREGATES}
            FROM t GROUP BY symbol, exchange, utc_hour
        ), bucketed AS (
            SELECT h.*, z.zone,
                   time_bucket(INTERVAL ($seconds) SECOND, timezone(z.zone, h.utc_hour),
                               TIMESTAMP '2000-01-01') AS local_start
            FROM hourly h JOIN zones z USING (exchange)
        ), bars AS (
            SELECT symbol, exchange, any_value(zone) AS zone, local_start,
                   arg_min(open, first_key) AS open, max(high) AS high, min(low) AS low,
                   arg_max(close, last_key) AS close, sum(volume) AS volume,
                   sum(trade_count) AS trade_count, sum(notional) AS notional,
                   min(first_trade) AS first_trade, max(last_trade) AS last_trade
            FROM bucketed GROUP BY symbol, exchange, local_start
        )
        SELECT symbol, exchange, timezone(zone, local_start) AS interval_start,
               timezone(zone, local_start + INTERVAL ($seconds) SECOND) AS interval_end, {_OUTPUTS}
        FROM bars ORDER BY symbol, exchange, interval_start
    """


def _bars_sql(interval: Interval, exchange: str | None) -> Callable[[str, str], str]:
    """The bar query for this interval: plain UTC buckets when they equal the venue's, else
    per-hour partial bars mapped to the venue's clock.
    """
    venues = [venue(exchange)] if exchange else list(VENUES.values())
    if not all(v.whole_hour_offsets for v in venues):
        raise InvalidQueryError("bars at venues with half-hour UTC offsets are not supported yet")
    if 3600 % interval.seconds == 0:
        return _utc_bars_sql
    if interval.seconds % 3600 == 0:
        return _hourly_local_bars_sql
    raise InvalidQueryError(f"bars of {interval} are not supported: above an hour, use whole hours")


def bars(engine: QueryEngine, query: BarQuery) -> pa.Table:
    """OHLCV bars, one row per symbol, exchange and bucket that has trades.

    Raises:
        TableNotFoundError: when no trades were ever loaded.
        SnapshotNotFoundError: for an unknown ``as_of``.
    """
    selection = query.selection
    scan = engine.scan(TRADES, selection, query.as_of)
    if not scan.paths:
        return BAR_SCHEMA.empty_table()
    params: dict[str, object] = {"paths": scan.paths, "seconds": query.interval.seconds}
    where = selection.where_sql(params)
    sql = _bars_sql(query.interval, query.exchange)(scan.source_sql, where)
    cursor = engine.cursor()
    try:
        cursor.register("zones", _zones_table())
        return cursor.sql(sql, params=params).to_arrow_table().cast(BAR_SCHEMA)
    finally:
        cursor.close()


TWAP_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("interval_start", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("twap", pa.decimal128(18, 8), nullable=True),
    ]
)


def _twap_sql(source: str, where: str) -> str:
    # Each price is weighted by how long it stood: until the next trade in the bucket, and the
    # bucket's last price until the bucket ends. Buckets follow the venue's clock.
    return f"""
        WITH t AS (
            SELECT symbol, exchange, timestamp, price, {_ORDER_KEY} AS order_key,
                   date_trunc('hour', timestamp) AS utc_hour
            FROM {source} WHERE {where}
        ), offsets AS (
            SELECT h.exchange, h.utc_hour, z.zone,
                   timezone(z.zone, h.utc_hour) - CAST(h.utc_hour AS TIMESTAMP) AS offset
            FROM (SELECT DISTINCT exchange, utc_hour FROM t) h JOIN zones z USING (exchange)
        ), bucketed AS (
            SELECT t.symbol, t.exchange, t.timestamp, t.price, t.order_key, o.zone,
                   time_bucket(INTERVAL ($seconds) SECOND, CAST(t.timestamp AS TIMESTAMP) + o.offset,
                               TIMESTAMP '2000-01-01') AS local_start
            FROM t JOIN offsets o USING (exchange, utc_hour)
        ), bounds AS (
            SELECT DISTINCT exchange, zone, local_start,
                   timezone(zone, local_start) AS interval_start,
                   timezone(zone, local_start + INTERVAL ($seconds) SECOND) AS interval_end
            FROM bucketed
        ), held AS (
            SELECT b.symbol, b.exchange, x.interval_start, b.price,
                   epoch_us(coalesce(
                       lead(b.timestamp) OVER (PARTITION BY b.symbol, b.exchange, b.local_start
                                               ORDER BY b.order_key),
                       x.interval_end)) - epoch_us(b.timestamp) AS micros
            FROM bucketed b JOIN bounds x USING (exchange, zone, local_start)
        )
        SELECT symbol, exchange, interval_start,
               CAST(round(CASE WHEN sum(micros) > 0
                               THEN sum(CAST(price AS DOUBLE) * micros) / sum(micros)
                               ELSE avg(CAST(price AS DOUBLE)) END, 8) AS DECIMAL(18, 8)) AS twap
        FROM held GROUP BY symbol, exchange, interval_start ORDER BY symbol, exchange, interval_start
    """


def twap(engine: QueryEngine, query: BarQuery) -> pa.Table:
    """Time-weighted average price per bucket: each price weighs the time it stood.

    Raises:
        TableNotFoundError: when no trades were ever loaded.
    """
    selection = query.selection
    scan = engine.scan(TRADES, selection, query.as_of)
    if not scan.paths:
        return TWAP_SCHEMA.empty_table()
    params: dict[str, object] = {"paths": scan.paths, "seconds": query.interval.seconds}
    where = selection.where_sql(params)
    cursor = engine.cursor()
    try:
        cursor.register("zones", _zones_table())
        return cursor.sql(_twap_sql(scan.source_sql, where), params=params).to_arrow_table().cast(TWAP_SCHEMA)
    finally:
        cursor.close()


def daily_summary(
    engine: QueryEngine, symbol: str, day: date, exchange: str | None = None, as_of: AsOf = CURRENT
) -> DailySummary | None:
    """Open, high, low, close, volume, trade count and VWAP of ``symbol`` on the venue-local
    calendar ``day``; None when it did not trade that day.

    Raises:
        InvalidQueryError: for the first or last day of the calendar, whose time zones overflow.
        NotFoundError: for an unknown exchange.
        TableNotFoundError: when no trades were ever loaded.
    """
    if not date.min < day < date.max:  # its bounds, widened by a day's time zones, must exist
        raise InvalidQueryError(f"day {day} is outside the calendar K2 reads")
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
