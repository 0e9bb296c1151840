"""K2 in process: each query of the peers benchmark is one call of ``k2.query`` on a
``QueryEngine``, so K2's internals can change underneath without touching the harness.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from benchmarks.peer_engine import TOLERANCE, Arrow, Window
from k2.domain.bars import Interval
from k2.query import BarQuery, QueryEngine, TickQuery, bars, trades
from k2.query.enrich import with_prevailing_quotes

MINUTE = Interval.parse("1m")


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
