"""Who answers a read: DuckDB in process, or a Trino server (``K2_QUERY_ENGINE``).

A :class:`Reader` answers the reads both engines can: pages of ticks, bars, time-weighted
prices and daily summaries, with the same types, order, cursors and decimals. Snapshots, tags and
table statistics come from Iceberg's metadata whichever engine reads (the
:class:`~k2.query.engine.QueryEngine` resolves them); what only DuckDB does (the live tail, the
prevailing-quote join, corporate-action adjustment, replay, coverage and gaps) asks
:func:`duckdb_only`, which refuses under Trino with :class:`EngineUnsupportedError`.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pyarrow as pa

from k2.query import ticks
from k2.query.bars import BarQuery, DailySummary
from k2.query.bars import bars as duckdb_bars
from k2.query.bars import daily_summary as duckdb_daily_summary
from k2.query.bars import twap as duckdb_twap
from k2.query.engine import CURRENT, AsOf, QueryEngine
from k2.query.errors import EngineUnsupportedError
from k2.query.ticks import Page, TickQuery
from k2.query.trino import TrinoReader
from k2.settings import K2Settings


class Reader(Protocol):
    """The reads both engines answer alike."""

    name: str
    engine: QueryEngine

    def trades(self, query: TickQuery) -> Page:
        """One page of trades; see :func:`k2.query.ticks.trades`."""
        ...

    def quotes(self, query: TickQuery) -> Page:
        """One page of quotes; see :func:`k2.query.ticks.quotes`."""
        ...

    def bars(self, query: BarQuery) -> pa.Table:
        """OHLCV bars with VWAP; see :func:`k2.query.bars.bars`."""
        ...

    def twap(self, query: BarQuery) -> pa.Table:
        """Time-weighted average prices; see :func:`k2.query.bars.twap`."""
        ...

    def daily_summary(
        self, symbol: str, day: date, exchange: str | None = None, as_of: AsOf = CURRENT
    ) -> DailySummary | None:
        """One symbol's venue-local day; see :func:`k2.query.bars.daily_summary`."""
        ...

    def probe(self) -> None:
        """Run a query that reads no table (the API's readiness); raise when the engine cannot."""
        ...


class DuckDBReader:
    """Reads answered in process by the :class:`~k2.query.engine.QueryEngine` (DuckDB and the
    row-group cache).
    """

    name = "duckdb"

    def __init__(self, engine: QueryEngine) -> None:
        """Read through ``engine``."""
        self.engine = engine

    def trades(self, query: TickQuery) -> Page:
        """One page of trades; see :func:`k2.query.ticks.trades`."""
        return ticks.trades(self.engine, query)

    def quotes(self, query: TickQuery) -> Page:
        """One page of quotes; see :func:`k2.query.ticks.quotes`."""
        return ticks.quotes(self.engine, query)

    def bars(self, query: BarQuery) -> pa.Table:
        """OHLCV bars with VWAP; see :func:`k2.query.bars.bars`."""
        return duckdb_bars(self.engine, query)

    def twap(self, query: BarQuery) -> pa.Table:
        """Time-weighted average prices; see :func:`k2.query.bars.twap`."""
        return duckdb_twap(self.engine, query)

    def daily_summary(
        self, symbol: str, day: date, exchange: str | None = None, as_of: AsOf = CURRENT
    ) -> DailySummary | None:
        """One symbol's venue-local day; see :func:`k2.query.bars.daily_summary`."""
        return duckdb_daily_summary(self.engine, symbol, day, exchange, as_of)

    def probe(self) -> None:
        """Run ``SELECT 1`` on a DuckDB cursor."""
        # Not engine.run: a query that reads no file must not pass for the object store's probe.
        cursor = self.engine.cursor()
        try:
            cursor.sql("SELECT 1").fetchall()
        finally:
            cursor.close()


def open_reader(settings: K2Settings, engine: QueryEngine) -> Reader:
    """The reader ``K2_QUERY_ENGINE`` names, over ``engine``'s catalog."""
    if settings.query.engine == "trino":
        return TrinoReader(engine, settings.trino_url, settings.lake.catalog_name)
    return DuckDBReader(engine)


def duckdb_only(reader: Reader, what: str) -> QueryEngine:
    """The DuckDB engine for a read only DuckDB answers.

    Raises:
        EngineUnsupportedError: when ``reader`` is not DuckDB's.
    """
    if reader.name != "duckdb":
        raise EngineUnsupportedError(
            f"{what} is answered by DuckDB only; this server reads through {reader.name} "
            "(K2_QUERY_ENGINE); see docs/trino.md"
        )
    return reader.engine
