"""``GET /v1/coverage``: which trading days hold data per symbol, and which weekdays do not."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from k2.api import formats
from k2.api.deps import ApiSettingsDep, CallerDep, EngineDep
from k2.api.envelope import correlation_id_of
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
from k2.lake.tables import table_spec
from k2.query.coverage import CoverageQuery, coverage, sequence_gaps

router = APIRouter(prefix="/v1", tags=["metadata"])


@router.get("/coverage")
def get_coverage(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    engine: EngineDep,
    table: TickTable = TickTable.TRADES,
    symbol: Symbols = None,
    exchange: Exchange = None,
    start_time: Start = None,
    end_time: End = None,
    as_of_snapshot: AsOfSnapshot = None,
    as_of_time: AsOfTime = None,
    as_of_tag: AsOfTag = None,
    format: Format = OutputFormat.JSON,
) -> Response:
    """Per symbol and venue-local day: row count and first/last event time; weekdays between a
    symbol's first and last day that hold nothing appear with `rows: 0` (missing sessions).
    """
    names, start, end = checked_range(settings, symbol, start_time, end_time)
    query = CoverageQuery(
        symbols=names,
        exchange=exchange,
        start=start,
        end=end,
        as_of=as_of(as_of_snapshot, as_of_time, as_of_tag),
    )
    result = coverage(engine, table_spec(table.value), query)
    envelope = {"meta": {"count": result.num_rows, "correlation_id": correlation_id_of(request.scope)}}
    return formats.encode(result, format, envelope, f"coverage_{table.value}", {}, duck=engine.cursor)


@router.get("/coverage/gaps")
def get_sequence_gaps(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    engine: EngineDep,
    table: TickTable = TickTable.TRADES,
    symbol: Symbols = None,
    exchange: Exchange = None,
    start_time: Start = None,
    end_time: End = None,
    as_of_snapshot: AsOfSnapshot = None,
    as_of_time: AsOfTime = None,
    as_of_tag: AsOfTag = None,
    format: Format = OutputFormat.JSON,
) -> Response:
    """Holes in each symbol's venue sequence numbers within a venue-local day: the numbers
    missing between two stored events (lost upstream, rejected at ingest, or not yet arrived).
    """
    names, start, end = checked_range(settings, symbol, start_time, end_time)
    query = CoverageQuery(
        symbols=names,
        exchange=exchange,
        start=start,
        end=end,
        as_of=as_of(as_of_snapshot, as_of_time, as_of_tag),
    )
    result = sequence_gaps(engine, table_spec(table.value), query)
    envelope = {"meta": {"count": result.num_rows, "correlation_id": correlation_id_of(request.scope)}}
    return formats.encode(result, format, envelope, f"gaps_{table.value}", {}, duck=engine.cursor)
