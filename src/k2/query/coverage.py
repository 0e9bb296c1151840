"""Which venue-local days hold data, per symbol, and which weekdays in between hold none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow as pa

from k2.domain.venues import VENUES
from k2.lake.tables import TableSpec
from k2.query.engine import CURRENT, AsOf, QueryEngine
from k2.query.ticks import pushdown_filter, where_sql

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
    symbols = tuple(sorted({s.upper() for s in query.symbols}))
    scan = engine.scan(spec, pushdown_filter(symbols, query.exchange, query.start, query.end), query.as_of)
    if not scan.paths:
        return COVERAGE_SCHEMA.empty_table()
    params: dict[str, object] = {"paths": scan.paths}
    where = where_sql(symbols, query.exchange, query.start, query.end, params)
    cursor = engine.cursor()
    try:
        cursor.register(
            "zones",
            pa.table(
                {"exchange": [v.code for v in VENUES.values()], "zone": [v.timezone for v in VENUES.values()]}
            ),
        )
        present = cursor.sql(
            f"""
            SELECT t.symbol, t.exchange, CAST(timezone(z.zone, t.timestamp) AS DATE) AS day,
                   count(*) AS rows, min(t.timestamp) AS first, max(t.timestamp) AS last
            FROM {scan.source_sql} t JOIN zones z USING (exchange) WHERE {where}
            GROUP BY ALL ORDER BY symbol, exchange, day
            """,
            params=params,
        ).to_arrow_table()
    finally:
        cursor.close()
    return _with_gaps(present)


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
