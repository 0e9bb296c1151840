"""Bars of any interval from per-bucket partials (:mod:`k2.lake.partials`), and their VWAP.

Partials of short buckets combine exactly into longer ones (:func:`combine_sql`); VWAP is the
exact notional over the exact volume (:func:`vwap`), so a bar is the same whether its partials
came from ticks or from the persisted 1-minute rollup.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.lake import decimals
from k2.lake.partials import PRICE

_FIRST_KEY = (
    "(CAST(epoch_us(first_trade) AS HUGEINT) * 18446744073709551616 "
    "+ (CAST(first_sequence AS HUGEINT) + 9223372036854775808))"
)
_LAST_KEY = (
    "(CAST(epoch_us(last_trade) AS HUGEINT) * 18446744073709551616 "
    "+ (CAST(last_sequence AS HUGEINT) + 9223372036854775808))"
)


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
