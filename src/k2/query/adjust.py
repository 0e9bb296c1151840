"""Corporate-action adjusted prices at read time, from the splits and dividends tables.

Prices of trades before an event are scaled so they compare with prices after it: a split of
ratio r divides earlier prices by r and multiplies earlier quantities by r; a cash dividend d
with ex-date e multiplies earlier prices by (1 - d / c), c being the last trade price before e.
Only events on or before ``as_of`` count, so an adjusted series can be reproduced as it was
seen on a given day. A dividend in another currency than the trades, or without a trade before
its ex-date in the lake, cannot be turned into a factor and is skipped (and logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import structlog

from k2.domain.time import local_day_bounds
from k2.domain.venues import venue
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import DIVIDENDS, SPLITS, TableSpec
from k2.query.engine import QueryEngine
from k2.query.ticks import TickQuery, trades

log = structlog.get_logger(__name__)


class Adjustment(StrEnum):
    """Which corporate actions adjust prices."""

    RAW = "raw"
    SPLIT = "split"
    DIVIDEND = "dividend"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class _Event:
    symbol: str
    exchange: str
    day: date
    price_factor: float
    quantity_factor: float


def _reference_rows(engine: QueryEngine, spec: TableSpec, symbols: set[str]) -> list[dict[str, Any]]:
    try:
        scan = engine.scan(spec)
    except TableNotFoundError:
        return []
    if not scan.paths:
        return []
    rows: list[dict[str, Any]] = engine.run(
        f"SELECT * FROM {scan.source_sql}", {"paths": scan.paths}
    ).to_pylist()
    return [r for r in rows if r["symbol"] in symbols]


def _close_before(engine: QueryEngine, symbol: str, exchange: str, day: date) -> Decimal | None:
    """The last trade price of ``symbol`` before the venue-local ``day`` starts (within 10 days)."""
    end = local_day_bounds(day, venue(exchange).zone)[0]
    query = TickQuery(
        symbols=(symbol,),
        exchange=exchange,
        start=end - timedelta(days=10),
        end=end,
        limit=1,
        descending=True,
    )
    rows = trades(engine, query).rows
    return None if rows.num_rows == 0 else rows["price"][0].as_py()


def _events(engine: QueryEngine, rows: pa.Table, mode: Adjustment, as_of: date) -> list[_Event]:
    symbols = set(pc.unique(rows["symbol"]).to_pylist())
    currencies = dict(
        zip(
            zip(rows["symbol"].to_pylist(), rows["exchange"].to_pylist(), strict=True),
            rows["currency"].to_pylist(),
            strict=True,
        )
    )
    events: list[_Event] = []
    if mode in (Adjustment.SPLIT, Adjustment.ALL):
        for split in _reference_rows(engine, SPLITS, symbols):
            ratio = float(split["ratio"])
            if split["effective_date"] <= as_of and ratio > 0:
                events.append(
                    _Event(split["symbol"], split["exchange"], split["effective_date"], 1 / ratio, ratio)
                )
    if mode in (Adjustment.DIVIDEND, Adjustment.ALL):
        for dividend in _reference_rows(engine, DIVIDENDS, symbols):
            key = (dividend["symbol"], dividend["exchange"])
            if dividend["ex_date"] > as_of or key not in currencies:
                continue
            if dividend["currency"] != currencies[key]:
                log.info(
                    "dividend_skipped",
                    symbol=key[0],
                    ex_date=str(dividend["ex_date"]),
                    reason="currency differs from the trades'",
                )
                continue
            close = _close_before(engine, key[0], key[1], dividend["ex_date"])
            if close is None or close <= dividend["net_amount"]:
                log.info(
                    "dividend_skipped",
                    symbol=key[0],
                    ex_date=str(dividend["ex_date"]),
                    reason="no usable close before the ex-date",
                )
                continue
            factor = 1 - float(dividend["net_amount"]) / float(close)
            events.append(_Event(key[0], key[1], dividend["ex_date"], factor, 1.0))
    return events


def _local_days(rows: pa.Table) -> np.ndarray:
    days = np.empty(rows.num_rows, dtype="datetime64[D]")
    exchanges = rows["exchange"].to_numpy(zero_copy_only=False)
    for exchange in set(exchanges.tolist()):
        mask = exchanges == exchange
        zone = venue(exchange).timezone
        local = pc.local_timestamp(pc.cast(rows["timestamp"], pa.timestamp("us", tz=zone)))
        days[mask] = local.to_numpy(zero_copy_only=False).astype("datetime64[D]")[mask]
    return days


def adjust(engine: QueryEngine, rows: pa.Table, mode: Adjustment, as_of: date) -> pa.Table:
    """``rows`` (trades) with ``price`` and ``quantity`` adjusted for the events of ``mode``
    up to ``as_of``, plus ``adjustment_factor`` (what ``price`` was multiplied by).
    """
    if mode is Adjustment.RAW:
        return rows
    factors = np.ones(rows.num_rows)
    quantity_factors = np.ones(rows.num_rows)
    if rows.num_rows:
        days = _local_days(rows)
        symbols = rows["symbol"].to_numpy(zero_copy_only=False)
        exchanges = rows["exchange"].to_numpy(zero_copy_only=False)
        for event in _events(engine, rows, mode, as_of):
            before = (
                (symbols == event.symbol) & (exchanges == event.exchange) & (days < np.datetime64(event.day))
            )
            factors[before] *= event.price_factor
            quantity_factors[before] *= event.quantity_factor
    price_type = rows.schema.field("price").type
    prices = pc.round(pc.multiply(pc.cast(rows["price"], pa.float64()), pa.array(factors)), 8)
    quantities = pc.round(pc.multiply(pc.cast(rows["quantity"], pa.float64()), pa.array(quantity_factors)), 8)
    result = rows.set_column(rows.schema.get_field_index("price"), "price", pc.cast(prices, price_type))
    result = result.set_column(
        result.schema.get_field_index("quantity"), "quantity", pc.cast(quantities, price_type)
    )
    return result.append_column("adjustment_factor", pa.array(factors))
