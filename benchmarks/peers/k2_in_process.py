"""K2 in process: each query of the peers benchmark is one call of ``k2.query`` on a
``QueryEngine``, so K2's internals can change underneath without touching the harness.

Q4 full reads every trade's ``symbol``, ``exchange``, ``timestamp`` and ``message_id`` through
K2's read path (the table's current snapshot planned by ``engine.scan``, its row groups decoded
and sliced by ``k2.query.ranges``) and joins them with ``with_prevailing_quotes``: its answer is
the joined Arrow table, summed up into the checksum only when the checks read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.peers.engine import CHECKSUM, TOLERANCE, Arrow, Window
from k2.domain.bars import Interval
from k2.lake.tables import TRADES
from k2.query import BarQuery, QueryEngine, TickQuery, bars, ranges, trades
from k2.query.engine import EVERYTHING
from k2.query.enrich import with_prevailing_quotes

MINUTE = Interval.parse("1m")
FULL_COLUMNS = ("symbol", "exchange", "timestamp", "message_id")


def first_trades(engine: QueryEngine, window: Window) -> pa.Table:
    """Q1 and Q5: the window's first trades in K2's order."""
    query = TickQuery(symbols=(window.symbol,), start=window.start, end=window.end, limit=window.limit)
    return trades(engine, query).rows


def minute_bars(engine: QueryEngine, window: Window | None) -> pa.Table:
    """Q2: one symbol's 1-minute bars in the window; Q3 (no window): every symbol's, all trades."""
    if window is None:
        return bars(engine, BarQuery(MINUTE))
    return bars(engine, BarQuery(MINUTE, symbols=(window.symbol,), start=window.start, end=window.end))


def trades_with_quotes(engine: QueryEngine, window: Window) -> pa.Table:
    """Q4: the window's trades with the quote prevailing at each."""
    return with_prevailing_quotes(engine, first_trades(engine, window), TOLERANCE)


def all_trades(engine: QueryEngine) -> pa.Table:
    """Every trade of the current snapshot, columns ``FULL_COLUMNS``, in block order (each
    symbol's rows of a row group in K2's order; no merge across row groups).
    """
    scan = engine.scan(TRADES)
    parts = [
        ranges.materialise(engine, scan, piece, FULL_COLUMNS).rows
        for piece in ranges.pieces(engine, scan, EVERYTHING, FULL_COLUMNS)
    ]
    return pa.concat_tables(parts)


def checksum(joined: pa.Table) -> pa.Table:
    """Q4 full's answer as the one row of ``CHECKSUM``."""
    matched = joined.num_rows - joined["quote_timestamp"].null_count
    values = (joined.num_rows, matched, pc.sum(joined["bid_price"]), pc.sum(joined["ask_price"]))
    return pa.table({name: [value] for name, value in zip(CHECKSUM, values, strict=True)})


@dataclass(frozen=True, slots=True)
class Joined:
    """Q4 full's answer: every trade with its quote, read as the checksum."""

    rows: pa.Table

    def table(self) -> pa.Table:
        """The checksum of the rows."""
        return checksum(self.rows)


@dataclass(frozen=True, slots=True)
class InProcess:
    """K2's queries in this process, answering in Arrow."""

    engine: QueryEngine

    def trades(self, window: Window) -> Arrow:
        """Q1 and Q5."""
        return Arrow(first_trades(self.engine, window))

    def bars(self, window: Window | None) -> Arrow:
        """Q2 and Q3."""
        return Arrow(minute_bars(self.engine, window))

    def with_quotes(self, window: Window) -> Arrow:
        """Q4."""
        return Arrow(trades_with_quotes(self.engine, window))

    def all_quotes(self) -> Joined:
        """Q4 full: every trade read through K2, then joined."""
        return Joined(with_prevailing_quotes(self.engine, all_trades(self.engine), TOLERANCE))
