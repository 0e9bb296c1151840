"""Trade aggregates per time bucket ("partials") that combine exactly into longer bars.

A partial summarises one symbol's trades in one bucket: open and close with the (time, sequence)
key that chose them, high, low, volume and notional (price x quantity) as exact decimals, the
trade count and the first and last trade times. Partials of short buckets add up to the partial
of any bucket they tile with the same result as the trades themselves give, so bars are always
made from partials — computed from ticks here (by DuckDB over Parquet, :func:`partials_sql`, or
by numpy over trades already in K2's order, :func:`partials_of`, held to the same answers by
tests), or read from the persisted 1-minute partials (:mod:`k2.lake.rollup`). Between trades
tied on time and sequence, the message id decides, as it orders pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.lake import decimals
from k2.schemas.market import MINUTE_BAR

UTC_TIME = pa.timestamp("us", tz="UTC")
PRICE = pa.decimal128(18, 8)
VOLUME = pa.decimal128(38, 8)
NOTIONAL = pa.decimal128(38, 16)

PARTIAL_SCHEMA = MINUTE_BAR.arrow_schema()

#: A trade's (time, sequence) as one number: time in the high 64 bits, the sequence (null as -1)
#: offset to unsigned in the low 64.
TIME_KEY = (
    "(CAST(epoch_us(timestamp) AS HUGEINT) * 18446744073709551616 "
    "+ (CAST(coalesce(source_sequence, -1) AS HUGEINT) + 9223372036854775808))"
)
#: A trade's place in K2's order: its time key, then the message id.
ORDER_KEY = f"{{'k': {TIME_KEY}, 'm': message_id}}"
_TIED = "__k2_tied"


def partials_sql(source: str, where: str, *, key: str = ORDER_KEY, ties: bool = False) -> str:
    """DuckDB SQL of the partials of the trades of ``source`` matching ``where``, in buckets of
    ``$grain`` seconds counted from UTC midnight (``$grain`` must divide an hour), open and close
    chosen by ``key``. With ``ties``, a column says whether two trades of the bucket share the
    smallest or the largest key (then ``key`` did not decide between them).
    """
    tied = (
        f", (len(min({key}, 2)) = 2 AND list_distinct(min({key}, 2)) = [min({key})]) "
        f"OR (len(max({key}, 2)) = 2 AND list_distinct(max({key}, 2)) = [max({key})]) AS {_TIED}"
        if ties
        else ""
    )
    return f"""
        SELECT symbol, exchange, time_bucket(INTERVAL ($grain) SECOND, timestamp) AS bucket_start,
               arg_min(price, {key}) AS open, max(price) AS high, min(price) AS low,
               arg_max(price, {key}) AS close,
               min(timestamp) AS first_trade,
               arg_min(coalesce(source_sequence, -1), {key}) AS first_sequence,
               max(timestamp) AS last_trade,
               arg_max(coalesce(source_sequence, -1), {key}) AS last_sequence,
               CAST(sum(quantity) AS DECIMAL(38, 8)) AS volume, count(*) AS trade_count,
               CAST(sum(CAST(price AS DECIMAL(38, 8)) * quantity) AS DECIMAL(38, 16)) AS notional{tied}
        FROM {source} WHERE {where}
        GROUP BY symbol, exchange, bucket_start
    """


def partials_of_files(
    duck: duckdb.DuckDBPyConnection, source: str, where: str, params: dict[str, object]
) -> pa.Table:
    """The partials of the trades of ``source`` matching ``where`` (see :func:`partials_sql`).

    Open and close are first chosen by (time, sequence) alone, which does not read the message
    ids; the few buckets where two trades tie at the open or the close are then computed again
    with the message id deciding, as K2's order does.
    """
    fast = duck.sql(partials_sql(source, where, key=TIME_KEY, ties=True), params=params).to_arrow_table()
    tied = fast.filter(pc.fill_null(fast[_TIED], False))
    fast = fast.filter(pc.invert(pc.fill_null(fast[_TIED], False))).drop_columns([_TIED])
    if tied.num_rows == 0:
        return fast.cast(PARTIAL_SCHEMA)
    duck.register("k2_tied_buckets", tied.select(["symbol", "exchange", "bucket_start"]))
    try:
        narrowed = (
            f"(SELECT s.* FROM {source} s SEMI JOIN k2_tied_buckets t ON s.symbol = t.symbol "
            "AND s.exchange = t.exchange "
            "AND time_bucket(INTERVAL ($grain) SECOND, s.timestamp) = t.bucket_start) AS tied"
        )
        exact = duck.sql(partials_sql(narrowed, where), params=params).to_arrow_table()
    finally:
        duck.unregister("k2_tied_buckets")
    return pa.concat_tables([fast.cast(PARTIAL_SCHEMA), exact.cast(PARTIAL_SCHEMA)])


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
