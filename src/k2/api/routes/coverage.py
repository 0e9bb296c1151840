"""``GET /v1/coverage``: which trading days hold data per symbol, and which weekdays do not."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Depends, Request, Response

from k2.api import formats
from k2.api.deps import ApiSettingsDep, CallerDep, MetricsDep, ReaderDep
from k2.api.envelope import request_meta
from k2.api.models import OutputFormat, TickTable
from k2.api.params import (
    AsOfSnapshot,
    AsOfTag,
    AsOfTime,
    End,
    Exchange,
    Format,
    Start,
    Symbols,
    as_of,
    checked_range,
)
from k2.api.timing import measured
from k2.lake.tables import table_spec
from k2.query.coverage import CoverageQuery, coverage, sequence_gaps
from k2.query.reader import duckdb_only

router = APIRouter(prefix="/v1", tags=["metadata"])


async def coverage_query(
    settings: ApiSettingsDep,
    symbol: Symbols = None,
    exchange: Exchange = None,
    start_time: Start = None,
    end_time: End = None,
    as_of_snapshot: AsOfSnapshot = None,
    as_of_time: AsOfTime = None,
    as_of_tag: AsOfTag = None,
) -> CoverageQuery:
    """The parameters both coverage reads take, as one validated query."""
    names, start, end = checked_range(settings, symbol, start_time, end_time)
    return CoverageQuery(
        symbols=names,
        exchange=exchange,
        start=start,
        end=end,
        as_of=as_of(as_of_snapshot, as_of_time, as_of_tag),
    )


CoverageQueryDep = Annotated[CoverageQuery, Depends(coverage_query)]


def _answer(request: Request, result: pa.Table, fmt: OutputFormat, name: str) -> Response:
    envelope = {"meta": {"count": result.num_rows, **request_meta(request.scope)}}
    return formats.encode(result, fmt, envelope, name, {})


@router.get("/coverage")
def get_coverage(
    request: Request,
    _caller: CallerDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    query: CoverageQueryDep,
    table: TickTable = TickTable.TRADES,
    format: Format = OutputFormat.JSON,
) -> Response:
    """Per symbol and venue-local day: row count and first/last event time; weekdays between a
    symbol's first and last day that hold nothing appear with `rows: 0` (missing sessions).
    """
    with measured(metrics, "coverage"):
        result = coverage(duckdb_only(reader, "coverage"), table_spec(table.value), query)
    return _answer(request, result, format, f"coverage_{table.value}")


@router.get("/coverage/gaps")
def get_sequence_gaps(
    request: Request,
    _caller: CallerDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    query: CoverageQueryDep,
    table: TickTable = TickTable.TRADES,
    format: Format = OutputFormat.JSON,
) -> Response:
    """Holes in each symbol's venue sequence numbers within a venue-local day: the numbers
    missing between two stored events (lost upstream, rejected at ingest, or not yet arrived).
    """
    with measured(metrics, "gaps"):
        result = sequence_gaps(duckdb_only(reader, "sequence gaps"), table_spec(table.value), query)
    return _answer(request, result, format, f"gaps_{table.value}")
