"""The read path: typed queries over K2's tables, answered by DuckDB, or by Trino through the
same :class:`~k2.query.reader.Reader` (:mod:`k2.query.reader`).
"""

from k2.query.bars import BarQuery, DailySummary, bars, daily_summary, twap
from k2.query.engine import CURRENT, AsOf, QueryEngine
from k2.query.metadata import (
    KafkaOffset,
    LoadInfo,
    SnapshotInfo,
    TableStats,
    loads,
    snapshots,
    stats,
    symbols,
    table_stats,
)
from k2.query.replay import ReplayPage, replay
from k2.query.ticks import Page, TickQuery, quotes, trades

__all__ = [
    "CURRENT",
    "AsOf",
    "BarQuery",
    "DailySummary",
    "KafkaOffset",
    "LoadInfo",
    "Page",
    "QueryEngine",
    "ReplayPage",
    "SnapshotInfo",
    "TableStats",
    "TickQuery",
    "bars",
    "daily_summary",
    "loads",
    "quotes",
    "replay",
    "snapshots",
    "stats",
    "symbols",
    "table_stats",
    "trades",
    "twap",
]
