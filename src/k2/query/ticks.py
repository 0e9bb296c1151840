"""Trades and quotes by symbol, exchange and time range, in stable pages.

Rows come in (timestamp, source_sequence, message_id) order, ascending or descending. A page
that may have more rows returns a cursor; the cursor pins the snapshot the first page read, so
later pages never shift while new data lands, and it only works with the same filters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from k2.domain.time import to_micros
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.query import ranges
from k2.query.cursor import PageCursor, fingerprint
from k2.query.engine import CURRENT, AsOf, QueryEngine, Selection
from k2.query.errors import InvalidQueryError


@dataclass(frozen=True, slots=True)
class TickQuery:
    """Filters of a trades or quotes read. ``end`` is exclusive; times are UTC-aware."""

    symbols: tuple[str, ...] = ()
    exchange: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 1000
    descending: bool = False
    cursor: str | None = None
    as_of: AsOf = field(default=CURRENT)

    @property
    def selection(self) -> Selection:
        """The rows the query selects (symbols upper-cased, each once, sorted)."""
        symbols = tuple(sorted({s.upper() for s in self.symbols}))
        return Selection(symbols, self.exchange, self.start, self.end)

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise InvalidQueryError("limit must be positive")
        if self.start and self.end and self.start >= self.end:
            raise InvalidQueryError("start must be before end")
        for t in (self.start, self.end):
            if t is not None and t.tzinfo is None:
                raise InvalidQueryError("start and end must carry a time zone")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows, the snapshot it was read from, and the cursor of the next page."""

    rows: pa.Table
    snapshot_id: int | None
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PagePlan:
    """What a page reads, whichever engine reads it: the snapshot (a cursor's, or the query's),
    the row after which it starts (None: the first page) and the digest its cursor carries.
    """

    as_of: AsOf
    after: PageCursor | None
    fingerprint: str


def plan(spec: TableSpec, query: TickQuery, max_limit: int) -> PagePlan:
    """The plan of one page of ``spec``'s rows matching ``query``.

    Raises:
        InvalidQueryError: for a limit beyond ``max_limit``.
        InvalidCursorError: for a cursor that is malformed or from other filters.
    """
    if query.limit > max_limit:
        raise InvalidQueryError(f"limit may be at most {max_limit}")
    selection = query.selection
    print_ = fingerprint(
        spec.name, selection.symbols, query.exchange, query.start, query.end, query.descending
    )
    after = PageCursor.decode(query.cursor, print_) if query.cursor else None
    return PagePlan(AsOf(snapshot_id=after.snapshot_id) if after else query.as_of, after, print_)


def cut(rows: pa.Table, limit: int, snapshot_id: int | None, print_: str) -> Page:
    """The page of ``rows`` (up to ``limit + 1`` of them, in page order) read from
    ``snapshot_id``: its first ``limit`` rows, with the cursor after the last when there are more.
    """
    if rows.num_rows <= limit or snapshot_id is None:
        return Page(rows, snapshot_id, None)
    rows = rows.slice(0, limit)
    last = rows.slice(limit - 1, 1).to_pylist()[0]
    next_cursor = PageCursor(
        snapshot_id,
        print_,
        to_micros(last["timestamp"]),
        last["source_sequence"] if last["source_sequence"] is not None else -1,
        last["message_id"],
    ).encode()
    return Page(rows, snapshot_id, next_cursor)


def page_of(engine: QueryEngine, spec: TableSpec, query: TickQuery) -> Page:
    """One page of ``spec``'s rows matching ``query``; see :func:`trades`."""
    planned = plan(spec, query, engine.settings.max_limit)
    selection = query.selection
    scan = engine.scan(spec, selection, planned.as_of)
    schema = spec.record.arrow_schema()
    if not scan.files:
        return Page(schema.empty_table(), scan.snapshot_id, None)
    found = ranges.pieces(engine, scan, selection, schema.names)
    after = planned.after
    if after:
        key = ranges.Key(after.timestamp_us, after.sequence, after.message_id)
        found = [ranges.after(engine, scan, piece, key, descending=query.descending) for piece in found]
    rows = ranges.ordered(engine, scan, found, schema.names, query.limit + 1, descending=query.descending)
    return cut(
        pa.Table.from_arrays(rows.columns, schema=schema), query.limit, scan.snapshot_id, planned.fingerprint
    )


def trades(engine: QueryEngine, query: TickQuery) -> Page:
    """One page of trades matching ``query``.

    Raises:
        InvalidQueryError: for a limit beyond the engine's maximum.
        InvalidCursorError: for a cursor that is malformed or from other filters.
        TableNotFoundError: when no trades were ever loaded.
        SnapshotNotFoundError: for an unknown ``as_of``.
    """
    return page_of(engine, TRADES, query)


def quotes(engine: QueryEngine, query: TickQuery) -> Page:
    """One page of quotes matching ``query``; raises as :func:`trades` does."""
    return page_of(engine, QUOTES, query)
