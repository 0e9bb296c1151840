"""The rows every peer loads: the current snapshot of the lake's trades and quotes, read from
their Parquet data files with pyarrow (only the columns the five queries need).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds

from benchmarks.peers.engine import QUOTE_COLUMNS, TRADE_COLUMNS
from k2.lake.tables import QUOTES, TRADES
from k2.query import QueryEngine


@dataclass(frozen=True, slots=True)
class Market:
    """The trades and quotes, how many files they came from and how long reading them took."""

    trades: pa.Table
    quotes: pa.Table
    files: int
    seconds: float

    @property
    def rows(self) -> int:
        """Trades and quotes."""
        return int(self.trades.num_rows + self.quotes.num_rows)


def _read(paths: list[str], columns: tuple[str, ...]) -> pa.Table:
    return ds.dataset(paths, format="parquet").to_table(columns=list(columns))


def read_market(engine: QueryEngine) -> Market:
    """Both tables' rows as of their current snapshots."""
    started = time.perf_counter()
    trade_paths = engine.scan(TRADES).paths
    quote_paths = engine.scan(QUOTES).paths
    trades = _read(trade_paths, TRADE_COLUMNS)
    quotes = _read(quote_paths, QUOTE_COLUMNS)
    return Market(trades, quotes, len(trade_paths) + len(quote_paths), time.perf_counter() - started)
