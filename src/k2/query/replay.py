"""Replay: a time range in event order, page after page from one snapshot, with progress."""

from __future__ import annotations

from dataclasses import dataclass

from k2.domain.time import to_micros
from k2.lake.tables import TableSpec
from k2.query import ranges
from k2.query.engine import AsOf, QueryEngine
from k2.query.errors import InvalidQueryError
from k2.query.ticks import Page, TickQuery, page_of


@dataclass(frozen=True, slots=True)
class ReplayPage:
    """One page of a replay and how far the replay has got."""

    page: Page
    delivered: int
    total: int

    @property
    def progress_percent(self) -> float:
        """Share of the range delivered so far, this page included."""
        return 100.0 if self.total == 0 else round(100.0 * self.delivered / self.total, 2)


def replay(engine: QueryEngine, spec: TableSpec, query: TickQuery) -> ReplayPage:
    """The next page of a replay of ``query``'s range (oldest first).

    Raises:
        InvalidQueryError: for a descending replay or an open-ended range.
    """
    if query.descending:
        raise InvalidQueryError("a replay runs forwards in time")
    if query.start is None or query.end is None:
        raise InvalidQueryError("a replay needs both start and end")
    page = page_of(engine, spec, query)
    if page.snapshot_id is None:
        return ReplayPage(page, 0, 0)
    selection = query.selection
    scan = engine.scan(spec, selection, AsOf(snapshot_id=page.snapshot_id))
    found = ranges.pieces(engine, scan, selection)
    total = ranges.count(engine, scan, found)
    if not page.rows.num_rows:
        return ReplayPage(page, 0, total)
    last = page.rows.slice(page.rows.num_rows - 1, 1).to_pylist()[0]
    sequence = last["source_sequence"]
    key = ranges.Key(to_micros(last["timestamp"]), -1 if sequence is None else sequence, last["message_id"])
    remaining = ranges.count(
        engine, scan, [ranges.after(engine, scan, p, key, descending=False) for p in found]
    )
    return ReplayPage(page, total - remaining, total)
