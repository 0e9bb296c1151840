"""Decode the newest days of trades and quotes into the row-group cache before they are asked for.

The specialist engines K2 is compared with answer from data they hold in memory (or in the page
cache) once loaded; K2 decodes a row group on first use. A server that knows its users read
recent days can decode them ahead (``K2_QUERY_PRELOAD_DAYS``), in the background, newest first,
until the cache is nine tenths full; requests meanwhile are answered as usual, decoding what
they need themselves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import structlog

from k2.lake.errors import TableNotFoundError
from k2.lake.tables import MARKET_TABLES, TableSpec
from k2.query.engine import QueryEngine

FULL = 0.9
BATCH = 8

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Preloaded:
    """What a preload decoded."""

    row_groups: int
    rows: int


def preload(
    engine: QueryEngine, days: int, stop: threading.Event, specs: tuple[TableSpec, ...] = MARKET_TABLES
) -> Preloaded:
    """Decode every column of the row groups of the newest ``days`` days of each table in
    ``specs`` (files whose partition pins no day count as newest), newest first, until ``stop``
    is set or the cache is nine tenths full.
    """
    groups_done = rows = 0
    for spec in specs:
        try:
            scan = engine.scan(spec)
        except TableNotFoundError:
            continue
        if scan.projection is None or not scan.files:
            continue
        days_held = [f.day for f in scan.files if f.day is not None]
        newest = max(days_held) if days_held else 0
        files = sorted(
            (f for f in scan.files if f.day is None or f.day > newest - days),
            key=lambda f: f.day if f.day is not None else newest,
            reverse=True,
        )
        groups = [group for file in files for group in engine.blocks.row_groups(file, scan.projection)]
        for start in range(0, len(groups), BATCH):
            if stop.is_set() or engine.blocks.nbytes > FULL * engine.blocks.max_bytes:
                break
            batch = groups[start : start + BATCH]
            engine.blocks.blocks(
                batch, scan.projection, scan.projection.names, workers=engine.settings.threads
            )
            groups_done += len(batch)
            rows += sum(g.rows for g in batch)
    log.info("query_preload_done", row_groups=groups_done, rows=rows, cache_bytes=engine.blocks.nbytes)
    return Preloaded(groups_done, rows)
