"""Trade aggregates per time bucket that combine exactly into bars of any longer interval.

A *partial* summarises one symbol's trades in one bucket: open and close with the (time,
sequence) key that chose them, high, low, volume and notional (price x quantity) as exact
decimals, the trade count and the first and last trade times. Partials of short buckets add up
to the partials of any bucket they tile, with the same result as computing from the trades, so
bars are always made in two steps: partials (from ticks, or later from a rollup), then
:func:`combine_sql` into the interval asked for. VWAP is the exact notional over the exact
volume, so it is the same however the partials were made.

Partials come from ticks two ways: DuckDB over Parquet files (:func:`partials_sql`, for wide
reads), or numpy over decoded row groups (:func:`partials_of`, for narrow reads), held to the
same answers by tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.query import decimals

UTC_TIME = pa.timestamp("us", tz="UTC")
PRICE = pa.decimal128(18, 8)
VOLUME = pa.decimal128(38, 8)
NOTIONAL = pa.decimal128(38, 16)

PARTIAL_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("bucket_start", UTC_TIME, nullable=False),
        pa.field("open", PRICE, nullable=False),
        pa.field("high", PRICE, nullable=False),
        pa.field("low", PRICE, nullable=False),
        pa.field("close", PRICE, nullable=False),
        pa.field("first_trade", UTC_TIME, nullable=False),
        pa.field("first_sequence", pa.int64(), nullable=False),
        pa.field("last_trade", UTC_TIME, nullable=False),
        pa.field("last_sequence", pa.int64(), nullable=False),
        pa.field("volume", VOLUME, nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("notional", NOTIONAL, nullable=False),
    ]
)

#: A trade's place in K2's order: (time, sequence) as one number — time in the high 64 bits,
#: the sequence (null as -1) offset to unsigned in the low 64 — then the message id.
ORDER_KEY = (
    "{'k': CAST(epoch_us(timestamp) AS HUGEINT) * 18446744073709551616 "
    "+ (CAST(coalesce(source_sequence, -1) AS HUGEINT) + 9223372036854775808), 'm': message_id}"
)
_FIRST_KEY = (
    "(CAST(epoch_us(first_trade) AS HUGEINT) * 18446744073709551616 "
    "+ (CAST(first_sequence AS HUGEINT) + 9223372036854775808))"
)
_LAST_KEY = (
    "(CAST(epoch_us(last_trade) AS HUGEINT) * 18446744073709551616 "
    "+ (CAST(last_sequence AS HUGEINT) + 9223372036854775808))"
)


def partials_sql(source: str, where: str) -> str:
    """DuckDB SQL of the partials of the trades of ``source`` matching ``where``, in buckets of
    ``$grain`` seconds counted from UTC midnight (``$grain`` must divide an hour).
    """
    return f"""
        SELECT symbol, exchange, time_bucket(INTERVAL ($grain) SECOND, timestamp) AS bucket_start,
               arg_min(price, {ORDER_KEY}) AS open, max(price) AS high, min(price) AS low,
               arg_max(price, {ORDER_KEY}) AS close,
               min(timestamp) AS first_trade,
               arg_min(coalesce(source_sequence, -1), {ORDER_KEY}) AS first_sequence,
               max(timestamp) AS last_trade,
               arg_max(coalesce(source_sequence, -1), {ORDER_KEY}) AS last_sequence,
               CAST(sum(quantity) AS DECIMAL(38, 8)) AS volume, count(*) AS trade_count,
               CAST(sum(CAST(price AS DECIMAL(38, 8)) * quantity) AS DECIMAL(38, 16)) AS notional
        FROM {source} WHERE {where}
        GROUP BY symbol, exchange, bucket_start
    """


# Partial columns combined over a group of partials, and the bar columns made from them.
_COMBINED = f"""
    arg_min(open, {_FIRST_KEY}) AS open, max(high) AS high, min(low) AS low,
    arg_max(close, {_LAST_KEY}) AS close,
    min(first_trade) AS first_trade, arg_min(first_sequence, {_FIRST_KEY}) AS first_sequence,
    max(last_trade) AS last_trade, arg_max(last_sequence, {_LAST_KEY}) AS last_sequence,
    CAST(sum(volume) AS DECIMAL(38, 8)) AS volume, CAST(sum(trade_count) AS BIGINT) AS trade_count,
    CAST(sum(notional) AS DECIMAL(38, 16)) AS notional
"""
_BAR_OUTPUTS = "open, high, low, close, volume, trade_count, notional, first_trade, last_trade"


def combine_sql(source: str, *, venue_clock: bool) -> str:
    """DuckDB SQL of bars of ``$seconds`` from the partials in ``source`` (their notional still
    to be turned into a VWAP by :func:`finish`).

    With ``venue_clock`` (intervals of whole hours), partials are first combined per UTC hour,
    which needs no time zone; each hour is then placed in the bucket of the venue's local clock
    it lies in (a ``zones`` relation maps exchange to time zone). Otherwise buckets are counted
    from UTC midnight, which is the venue's clock for intervals that divide an hour at venues
    whose UTC offset is a whole number of hours.
    """
    if not venue_clock:
        return f"""
            WITH bars AS (
                SELECT symbol, exchange,
                       time_bucket(INTERVAL ($seconds) SECOND, bucket_start) AS interval_start, {_COMBINED}
                FROM {source} GROUP BY symbol, exchange, interval_start
            )
            SELECT symbol, exchange, interval_start,
                   interval_start + INTERVAL ($seconds) SECOND AS interval_end, {_BAR_OUTPUTS}
            FROM bars ORDER BY symbol, exchange, interval_start
        """
    return f"""
        WITH hourly AS (
            SELECT symbol, exchange, date_trunc('hour', bucket_start) AS bucket_start, {_COMBINED}
            FROM {source} GROUP BY symbol, exchange, date_trunc('hour', bucket_start)
        ), placed AS (
            SELECT h.*, z.zone,
                   time_bucket(INTERVAL ($seconds) SECOND, timezone(z.zone, h.bucket_start),
                               TIMESTAMP '2000-01-01') AS local_start
            FROM hourly h JOIN zones z USING (exchange)
        ), bars AS (
            SELECT symbol, exchange, any_value(zone) AS zone, local_start, {_COMBINED}
            FROM placed GROUP BY symbol, exchange, local_start
        )
        SELECT symbol, exchange, timezone(zone, local_start) AS interval_start,
               timezone(zone, local_start + INTERVAL ($seconds) SECOND) AS interval_end, {_BAR_OUTPUTS}
        FROM bars ORDER BY symbol, exchange, interval_start
    """


def as_bars(partials: pa.Table, interval_seconds: int) -> pa.Table:
    """Bars of the partials' own buckets (``interval_seconds`` long), to be finished by
    :func:`finish`: what :func:`combine_sql` gives when each bar is one partial.
    """
    starts = partials["bucket_start"]
    ends = pc.add(starts, pa.scalar(interval_seconds * 1_000_000, pa.duration("us")))
    keep = ["open", "high", "low", "close", "volume", "trade_count", "notional", "first_trade", "last_trade"]
    table = partials.select(["symbol", "exchange"]).append_column("interval_start", starts)
    table = table.append_column("interval_end", ends)
    for name in keep:
        table = table.append_column(name, partials[name])
    return table.sort_by(
        [("symbol", "ascending"), ("exchange", "ascending"), ("interval_start", "ascending")]
    )


def finish(bars: pa.Table) -> pa.Table:
    """``bars`` with their notional replaced by the VWAP it gives (see :func:`vwap`)."""
    position = bars.schema.get_field_index("notional")
    weighted = vwap(bars["notional"].combine_chunks(), bars["volume"].combine_chunks())
    return bars.remove_column(position).add_column(position, "vwap", weighted)


def vwap(notional: pa.Array, volume: pa.Array) -> pa.Array:
    """``notional / volume`` rounded half to even to 8 decimals, exactly (null where the volume
    is not positive).

    Computed in double precision, which decides the rounding whenever the quotient is not within
    the double's error of a halfway point; those few quotients are divided again exactly.
    """
    n = pc.cast(notional, pa.float64()).to_numpy(zero_copy_only=False)
    v = pc.cast(volume, pa.float64()).to_numpy(zero_copy_only=False)
    valid = v > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(valid, n / np.where(valid, v, 1.0) * 1e8, 0.0)
    units = np.rint(ratio)
    doubtful = valid & (
        (np.abs(np.abs(ratio - np.floor(ratio)) - 0.5) <= np.abs(ratio) * 1e-14 + 1e-6)
        | (np.abs(ratio) >= 2.0**52)
    )
    result = units.astype(np.int64)
    if doubtful.any():
        quantum = Decimal("1e-8")
        with localcontext() as context:
            context.prec = 80
            for i in np.flatnonzero(doubtful).tolist():
                exact = Decimal(notional[i].as_py()) / Decimal(volume[i].as_py())
                result[i] = int(exact.quantize(quantum, rounding=ROUND_HALF_EVEN).scaleb(8))
    return decimals.decimals(result, PRICE, valid)


@dataclass(frozen=True, slots=True)
class Trades:
    """One symbol's trades at one exchange in K2's order: prices and quantities (decimal(18, 8)
    Arrow arrays), event times (µs) and sequences (null as -1).
    """

    symbol: str
    exchange: str
    prices: pa.Array
    quantities: pa.Array
    times: np.ndarray
    sequences: np.ndarray


def partials_of(groups: Sequence[Trades], grain_seconds: int) -> pa.Table:
    """The partials of each group's trades in buckets of ``grain_seconds`` (dividing an hour)."""
    tables = [_partials(group, grain_seconds * 1_000_000) for group in groups if len(group.times)]
    if not tables:
        return PARTIAL_SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _partials(trades: Trades, grain_us: int) -> pa.Table:
    if trades.prices.type.scale != PRICE.scale or trades.prices.null_count or trades.quantities.null_count:
        raise TypeError(f"partials need prices of {PRICE} and quantities, without nulls")
    times, sequences = trades.times, trades.sequences
    prices, quantities = trades.prices, trades.quantities
    buckets = times // grain_us
    starts = np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))
    stops = np.concatenate((starts[1:], [len(times)]))
    price_units = decimals.units(prices)
    last = stops - 1
    columns = {
        "symbol": pa.array([trades.symbol] * len(starts), pa.string()),
        "exchange": pa.array([trades.exchange] * len(starts), pa.string()),
        "bucket_start": pa.array(buckets[starts] * grain_us, pa.int64()).cast(UTC_TIME),
        "open": decimals.decimals(price_units[starts], PRICE),
        "high": decimals.decimals(np.maximum.reduceat(price_units, starts), PRICE),
        "low": decimals.decimals(np.minimum.reduceat(price_units, starts), PRICE),
        "close": decimals.decimals(price_units[last], PRICE),
        "first_trade": pa.array(times[starts], pa.int64()).cast(UTC_TIME),
        "first_sequence": pa.array(sequences[starts], pa.int64()),
        "last_trade": pa.array(times[last], pa.int64()).cast(UTC_TIME),
        "last_sequence": pa.array(sequences[last], pa.int64()),
        "volume": _exact_sums(_limbs(decimals.units(quantities)), starts, VOLUME, quantities.type.scale),
        "trade_count": pa.array(stops - starts, pa.int64()),
        "notional": _exact_sums(
            _limbs128(pc.multiply(prices, quantities)),
            starts,
            NOTIONAL,
            prices.type.scale + quantities.type.scale,
        ),
    }
    return pa.table(columns, schema=PARTIAL_SCHEMA)


def _limbs(units: np.ndarray) -> list[np.ndarray]:
    """64-bit integers as two 32-bit limbs, the low one unsigned and the high one signed."""
    halves = np.ascontiguousarray(units).view("<u4").reshape(len(units), 2)
    return [halves[:, 0], halves.view("<i4")[:, 1]]


def _limbs128(values: pa.Array) -> list[np.ndarray]:
    """The 128-bit unscaled integers of a decimal128 array as four 32-bit limbs (the top one
    signed); sums of up to 2**31 limbs fit 64 bits.
    """
    if values.null_count:
        raise ValueError("partials need values without nulls")
    start, stop = 4 * values.offset, 4 * (values.offset + len(values))
    words = np.frombuffer(values.buffers()[1], dtype="<u4")[start:stop].reshape(len(values), 4)
    return [words[:, 0], words[:, 1], words[:, 2], words.view("<i4")[:, 3]]


def _exact_sums(limbs: list[np.ndarray], starts: np.ndarray, kind: pa.DataType, scale: int) -> pa.Array:
    """Per-segment sums of integers given as 32-bit ``limbs``, as decimals of ``kind`` (rescaled
    from ``scale``), computed without rounding.
    """
    sums = [np.add.reduceat(limb, starts, dtype=np.int64).tolist() for limb in limbs]
    if kind.scale < scale:
        raise TypeError(f"sums of scale {scale} do not fit {kind} exactly")
    factor = 10 ** (kind.scale - scale)
    values = [
        sum(part << (32 * i) for i, part in enumerate(parts)) * factor for parts in zip(*sums, strict=True)
    ]
    raw = b"".join(v.to_bytes(16, "little", signed=True) for v in values)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(raw)])
