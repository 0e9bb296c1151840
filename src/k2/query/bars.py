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
from k2.lake import partials
from k2.lake.partials import PARTIAL_SCHEMA
from k2.lake.tables import BARS_1M, TRADES
from k2.query import aggregates, ranges
from k2.query.engine import CURRENT, AsOf, QueryEngine, Scan, Selection
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
    first_trade_time: datetime
    last_trade_time: datetime


def zones_table() -> pa.Table:
    """Each venue's exchange code and time zone."""
    return pa.table(
        {"exchange": [v.code for v in VENUES.values()], "zone": [v.timezone for v in VENUES.values()]}
    )


#: Rows of row groups a bar query reads through decoded row groups (numpy); above this, DuckDB
#: scans the Parquet files itself (a whole-table scan is faster there than decoding it all).
NARROW_ROWS = 2_000_000
MINUTE = 60


def venue_clock(interval: Interval, exchange: str | None) -> bool:
    """Whether bars of ``interval`` are placed on the venue's clock from UTC hours (whole-hour
    intervals) rather than counted from UTC midnight (intervals that divide an hour).
    """
    venues = [venue(exchange)] if exchange else list(VENUES.values())
    if not all(v.whole_hour_offsets for v in venues):
        raise InvalidQueryError("bars at venues with half-hour UTC offsets are not supported yet")
    if 3600 % interval.seconds == 0:
        return False
    if interval.seconds % 3600 == 0:
        return True
    raise InvalidQueryError(f"bars of {interval} are not supported: above an hour, use whole hours")


def bars(engine: QueryEngine, query: BarQuery) -> pa.Table:
    """OHLCV bars, one row per symbol, exchange and bucket that has trades.

    Raises:
        TableNotFoundError: when no trades were ever loaded.
        SnapshotNotFoundError: for an unknown ``as_of``.
    """
    on_venue_clock = venue_clock(query.interval, query.exchange)
    grain = 3600 if on_venue_clock else query.interval.seconds
    selection = query.selection
    scan = engine.scan(TRADES, selection, query.as_of)
    if not scan.files:
        return BAR_SCHEMA.empty_table()
    decoded = _rollup_partials(engine, query, selection)
    if decoded is not None:
        grain = MINUTE
    else:
        decoded = _decoded_partials(engine, scan, selection, grain)
    cursor = engine.cursor()
    try:
        if decoded is None:
            wide: dict[str, object] = {"paths": scan.paths, "grain": grain}
            decoded = partials.partials_of_files(cursor, scan.source_sql, selection.where_sql(wide), wide)
        if grain == query.interval.seconds and not on_venue_clock:
            return aggregates.finish(aggregates.as_bars(decoded, grain)).cast(BAR_SCHEMA)
        cursor.register("zones", zones_table())
        cursor.register("partials", decoded)
        sql = aggregates.combine_sql("partials", venue_clock=on_venue_clock)
        with engine.reading_files("aggregate bars"):
            combined = cursor.sql(sql, params={"seconds": query.interval.seconds}).to_arrow_table()
        return aggregates.finish(combined).cast(BAR_SCHEMA)
    finally:
        cursor.close()


def _rollup_partials(engine: QueryEngine, query: BarQuery, selection: Selection) -> pa.Table | None:
    """The 1-minute partials of the selected trades from the rollup; None unless the rollup
    reflects the snapshot read and the bars and the range are made of whole minutes.
    """
    if (
        not engine.settings.rollup
        or query.interval.seconds % MINUTE
        or any(
            bound is not None and bound % (MINUTE * 1_000_000)
            for bound in (selection.start_us, selection.end_us)
        )
    ):
        return None
    trades = engine.table(TRADES)
    snapshot = engine.snapshot_id(trades, query.as_of)
    reflecting = engine.rollup_snapshot(trades, snapshot) if snapshot is not None else None
    if reflecting is None:
        return None
    scan = engine.scan(BARS_1M, selection, AsOf(snapshot_id=reflecting))
    names = PARTIAL_SCHEMA.names
    parts = [
        ranges.materialise(engine, scan, piece, names).rows
        for piece in ranges.pieces(engine, scan, selection, names)
    ]
    return pa.concat_tables(parts).cast(PARTIAL_SCHEMA) if parts else PARTIAL_SCHEMA.empty_table()


def _decoded_partials(engine: QueryEngine, scan: Scan, selection: Selection, grain: int) -> pa.Table | None:
    """Partials of the selected trades made from decoded row groups; None when the read is too
    wide for that (or its files do not pin their exchange), and DuckDB should scan the files.
    """
    projection = scan.projection
    if projection is None or any(f.exchange is None for f in scan.files):
        return None
    start_us, end_us = selection.start_us, selection.end_us
    rows = 0
    for file in scan.files:
        rows += sum(
            g.rows for g in engine.blocks.row_groups(file, projection, selection.symbols, start_us, end_us)
        )
        if rows > NARROW_ROWS:
            return None
    groups: dict[tuple[str, str], list[ranges.Piece]] = {}
    for piece in ranges.pieces(engine, scan, selection, ["price", "quantity"]):
        groups.setdefault((piece.symbol, piece.block.group.file.exchange or ""), []).append(piece)
    trades = []
    for (symbol, exchange), found in groups.items():
        merged = ranges.merge(engine, scan, found, ["price", "quantity"])
        if merged is not None:
            trades.append(
                partials.Trades(
                    symbol=symbol,
                    exchange=exchange,
                    prices=merged.rows["price"].combine_chunks(),
                    quantities=merged.rows["quantity"].combine_chunks(),
                    times=merged.times,
                    sequences=merged.sequences,
                )
            )
    return partials.partials_of(trades, grain)


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
            SELECT symbol, exchange, timestamp, price, {partials.ORDER_KEY} AS order_key,
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
        cursor.register("zones", zones_table())
        with engine.reading_files("aggregate time-weighted prices"):
            return (
                cursor.sql(_twap_sql(scan.source_sql, where), params=params)
                .to_arrow_table()
                .cast(TWAP_SCHEMA)
            )
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
    return summary_of(bars(engine, summary_query(symbol, day, exchange, as_of)), day)


def summary_query(symbol: str, day: date, exchange: str | None = None, as_of: AsOf = CURRENT) -> BarQuery:
    """The daily bars that hold ``symbol``'s venue-local ``day`` (:func:`summary_of` picks it).

    Raises:
        InvalidQueryError: for the first or last day of the calendar, whose time zones overflow.
        NotFoundError: for an unknown exchange.
    """
    if not date.min < day < date.max:  # its bounds, widened by a day's time zones, must exist
        raise InvalidQueryError(f"day {day} is outside the calendar K2 reads")
    if exchange:
        start, end = local_day_bounds(day, venue(exchange).zone)
    else:
        # Any venue's local day lies within UTC-12..UTC+14 of the UTC day.
        utc_start, utc_end = local_day_bounds(day, UTC_ZONE)
        start, end = utc_start - timedelta(hours=14), utc_end + timedelta(hours=12)
    return BarQuery(Interval(1, "d"), symbols=(symbol,), exchange=exchange, start=start, end=end, as_of=as_of)


def summary_of(rows: pa.Table, day: date) -> DailySummary | None:
    """The summary of the venue-local ``day`` among the daily bars ``rows``; None if none is."""
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
            first_trade_time=bar["first_trade"],
            last_trade_time=bar["last_trade"],
        )
    return None
