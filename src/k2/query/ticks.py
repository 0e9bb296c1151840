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


def page_of(engine: QueryEngine, spec: TableSpec, query: TickQuery) -> Page:
    """One page of ``spec``'s rows matching ``query``; see :func:`trades`."""
    if query.limit > engine.settings.max_limit:
        raise InvalidQueryError(f"limit may be at most {engine.settings.max_limit}")
    selection = query.selection
    print_ = fingerprint(
        spec.name, selection.symbols, query.exchange, query.start, query.end, query.descending
    )
    after = PageCursor.decode(query.cursor, print_) if query.cursor else None
    as_of = AsOf(snapshot_id=after.snapshot_id) if after else query.as_of
    scan = engine.scan(spec, selection, as_of)
    schema = spec.record.arrow_schema()
    if not scan.files:
        return Page(schema.empty_table(), scan.snapshot_id, None)
    found = ranges.pieces(engine, scan, selection, schema.names)
    if after:
        key = ranges.Key(after.timestamp_us, after.sequence, after.message_id)
        found = [ranges.after(engine, scan, piece, key, descending=query.descending) for piece in found]
    rows = ranges.ordered(engine, scan, found, schema.names, query.limit + 1, descending=query.descending)
    rows = pa.Table.from_arrays(rows.columns, schema=schema)
    next_cursor = None
    if rows.num_rows > query.limit and scan.snapshot_id is not None:
        rows = rows.slice(0, query.limit)
        last = rows.slice(query.limit - 1, 1).to_pylist()[0]
        next_cursor = PageCursor(
            scan.snapshot_id,
            print_,
            to_micros(last["timestamp"]),
            last["source_sequence"] if last["source_sequence"] is not None else -1,
            last["message_id"],
        ).encode()
    return Page(rows, scan.snapshot_id, next_cursor)


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
