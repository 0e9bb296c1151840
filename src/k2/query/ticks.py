"""Trades and quotes by symbol, exchange and time range, in stable pages.

Rows come in (timestamp, source_sequence, message_id) order, ascending or descending. A page
that may have more rows returns a cursor; the cursor pins the snapshot the first page read, so
later pages never shift while new data lands, and it only works with the same filters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression

from k2.domain.time import to_micros
from k2.lake.scan import at_least, equal_to, less_than, one_of
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.query.cursor import PageCursor, fingerprint
from k2.query.engine import CURRENT, AsOf, QueryEngine
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


def pushdown_filter(
    symbols: tuple[str, ...], exchange: str | None, start: datetime | None, end: datetime | None
) -> BooleanExpression:
    """The Iceberg filter that prunes partitions and files for these filters.

    Time bounds are widened to whole UTC days: tables are partitioned by day, so this selects the
    same partitions, and queries on the same days share one cached plan (the exact bounds are
    applied when the files are read).
    """
    parts: list[BooleanExpression] = []
    if symbols:
        parts.append(equal_to("symbol", symbols[0]) if len(symbols) == 1 else one_of("symbol", set(symbols)))
    if exchange:
        parts.append(equal_to("exchange", exchange.upper()))
    if start:
        parts.append(at_least("timestamp", _day_floor(start).isoformat()))
    if end:
        day = _day_floor(end)
        parts.append(less_than("timestamp", (day if day == end else day + timedelta(days=1)).isoformat()))
    expression: BooleanExpression = AlwaysTrue()
    for part in parts:
        expression = And(expression, part)
    return expression


def _day_floor(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def where_sql(
    symbols: tuple[str, ...],
    exchange: str | None,
    start: datetime | None,
    end: datetime | None,
    params: dict[str, object],
) -> str:
    """The SQL WHERE clause for these filters, adding bound values to ``params``."""
    clauses = ["TRUE"]
    if symbols:
        names = []
        for i, symbol in enumerate(symbols):
            params[f"s{i}"] = symbol
            names.append(f"$s{i}")
        clauses.append(f"symbol IN ({', '.join(names)})")
    if exchange:
        params["exchange"] = exchange.upper()
        clauses.append("exchange = $exchange")
    if start:
        params["start"] = start
        clauses.append("timestamp >= $start")
    if end:
        params["end"] = end
        clauses.append("timestamp < $end")
    return " AND ".join(clauses)


def page_of(engine: QueryEngine, spec: TableSpec, query: TickQuery) -> Page:
    """One page of ``spec``'s rows matching ``query``; see :func:`trades`."""
    if query.limit > engine.settings.max_limit:
        raise InvalidQueryError(f"limit may be at most {engine.settings.max_limit}")
    symbols = tuple(sorted({s.upper() for s in query.symbols}))
    print_ = fingerprint(spec.name, symbols, query.exchange, query.start, query.end, query.descending)
    after = PageCursor.decode(query.cursor, print_) if query.cursor else None
    as_of = AsOf(snapshot_id=after.snapshot_id) if after else query.as_of
    scan = engine.scan(spec, pushdown_filter(symbols, query.exchange, query.start, query.end), as_of)
    empty = spec.record.arrow_schema().empty_table()
    if not scan.paths:
        return Page(empty, scan.snapshot_id, None)
    params: dict[str, object] = {"paths": scan.paths, "limit": query.limit + 1}
    where = where_sql(symbols, query.exchange, query.start, query.end, params)
    direction = "DESC" if query.descending else "ASC"
    if after:
        params.update(after_ts=after.timestamp_us, after_seq=after.sequence, after_id=after.message_id)
        op = "<" if query.descending else ">"
        where += (
            f" AND (epoch_us(timestamp), coalesce(source_sequence, -1), message_id) {op} "
            "($after_ts, $after_seq, $after_id)"
        )
    # The record's columns by name: files written before the table gained a column lack it.
    columns = ", ".join(f'"{name}"' for name in spec.record.names)
    sql = (
        f"SELECT {columns} FROM {scan.source_sql} WHERE {where} "
        f"ORDER BY timestamp {direction}, coalesce(source_sequence, -1) {direction}, "
        f"message_id {direction} LIMIT $limit"
    )
    rows = engine.run(sql, params).cast(spec.record.arrow_schema())
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
