"""Which venue-local days hold data, per symbol, and which weekdays in between hold none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa

from k2.domain.venues import VENUES
from k2.lake.tables import TableSpec
from k2.query.engine import CURRENT, AsOf, QueryEngine, Selection

GAPS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("first_missing", pa.int64(), nullable=False),
        pa.field("last_missing", pa.int64(), nullable=False),
        pa.field("missing", pa.int64(), nullable=False),
        pa.field("after", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

COVERAGE_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("first", pa.timestamp("us", tz="UTC"), nullable=True),
        pa.field("last", pa.timestamp("us", tz="UTC"), nullable=True),
    ]
)


@dataclass(frozen=True, slots=True)
class CoverageQuery:
    """Symbols (all if empty) and an optional range."""

    symbols: tuple[str, ...] = ()
    exchange: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    as_of: AsOf = CURRENT


def coverage(engine: QueryEngine, spec: TableSpec, query: CoverageQuery) -> pa.Table:
    """One row per symbol and venue-local day from its first to its last day with data:
    rows and first/last event time, and ``rows = 0`` for weekdays in between that hold nothing
    (a missing session, or a holiday: K2 keeps no holiday calendar yet).

    Raises:
        TableNotFoundError: when the table was never loaded.
    """
    present = _on_venue_days(
        engine,
        spec,
        query,
        lambda located: (
            f"""
            SELECT symbol, exchange, day, count(*) AS rows, min(timestamp) AS first, max(timestamp) AS last
            FROM {located} GROUP BY ALL ORDER BY symbol, exchange, day
            """
        ),
    )
    return COVERAGE_SCHEMA.empty_table() if present is None else _with_gaps(present)


def sequence_gaps(engine: QueryEngine, spec: TableSpec, query: CoverageQuery) -> pa.Table:
    """Holes in each symbol's venue sequence numbers (``source_sequence``) within a venue-local
    day: the numbers missing between two stored events, and the time of the event before them.

    A hole is an event the venue numbered that the lake does not hold: lost upstream, rejected
    at ingest (a reject keeps its number), or late and not yet arrived.

    Raises:
        TableNotFoundError: when the table was never loaded.
    """
    gaps = _on_venue_days(
        engine,
        spec,
        query,
        lambda located: (
            f"""
            WITH numbered AS (
                SELECT symbol, exchange, day, source_sequence AS seq, max(timestamp) AS event_time
                FROM {located} WHERE source_sequence IS NOT NULL GROUP BY ALL
            ), ordered AS (
                SELECT *, lag(seq) OVER w AS prev_seq, lag(event_time) OVER w AS prev_time
                FROM numbered WINDOW w AS (PARTITION BY symbol, exchange, day ORDER BY seq)
            )
            SELECT symbol, exchange, day, prev_seq + 1 AS first_missing, seq - 1 AS last_missing,
                   seq - prev_seq - 1 AS missing, prev_time AS after
            FROM ordered WHERE seq - prev_seq > 1
            ORDER BY symbol, exchange, day, first_missing
            """
        ),
    )
    return GAPS_SCHEMA.empty_table() if gaps is None else gaps.cast(GAPS_SCHEMA)


def _on_venue_days(
    engine: QueryEngine, spec: TableSpec, query: CoverageQuery, sql: Callable[[str], str]
) -> pa.Table | None:
    """Run ``sql(located)``, where ``located`` is a subquery of the rows matching ``query`` with
    their venue-local ``day``; None when no file can hold such rows.
    """
    symbols = tuple(sorted({s.upper() for s in query.symbols}))
    selection = Selection(symbols, query.exchange, query.start, query.end)
    scan = engine.scan(spec, selection, query.as_of)
    if not scan.paths:
        return None
    params: dict[str, object] = {"paths": scan.paths}
    where = selection.where_sql(params)
    located = (
        f"(SELECT t.*, CAST(timezone(z.zone, t.timestamp) AS DATE) AS day "
        f"FROM {scan.source_sql} t JOIN zones z USING (exchange) WHERE {where})"
    )
    cursor = engine.cursor()
    try:
        cursor.register("zones", _zones())
        with engine.reading_files("measure coverage"):
            return cursor.sql(sql(located), params=params).to_arrow_table()
    finally:
        cursor.close()


def _zones() -> pa.Table:
    """Each venue's time zone, to join on ``exchange``."""
    return pa.table(
        {"exchange": [v.code for v in VENUES.values()], "zone": [v.timezone for v in VENUES.values()]}
    )


def _with_gaps(present: pa.Table) -> pa.Table:
    rows: list[dict[str, object]] = []
    previous: dict[tuple[str, str], date] = {}
    for row in present.to_pylist():
        key = (row["symbol"], row["exchange"])
        if key in previous:
            day = previous[key] + timedelta(days=1)
            while day < row["day"]:
                if day.weekday() < 5:
                    rows.append(
                        {
                            "symbol": key[0],
                            "exchange": key[1],
                            "day": day,
                            "rows": 0,
                            "first": None,
                            "last": None,
                        }
                    )
                day += timedelta(days=1)
        previous[key] = row["day"]
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=COVERAGE_SCHEMA)
