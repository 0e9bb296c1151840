"""``GET /v1/trades`` and ``GET /v1/quotes``: rows by symbol, exchange and time, in stable pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from k2.api.degraded import INCLUDE_LIVE, WITH_QUOTES, cached_only, capped, enrichment
from k2.api.deps import AnswersDep, ApiSettingsDep, CallerDep, MetricsDep, ReaderDep, TailDep
from k2.api.envelope import overloaded_response
from k2.api.models import Order, OutputFormat, RowsResponse
from k2.api.pages import cached_page, live_page, respond, run_page
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
from k2.lake.tables import QUOTES, TRADES
from k2.query import Page, TickQuery
from k2.query.adjust import Adjustment, adjust
from k2.query.enrich import with_prevailing_quotes
from k2.query.reader import duckdb_only

router = APIRouter(prefix="/v1", tags=["ticks"])

Limit = Annotated[int, Query(ge=1, description="Rows per page (at most K2_API_MAX_ROWS).")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page.")]
PageOrder = Annotated[Order, Query(description="asc: oldest first; desc: newest first.")]
IncludeLive = Annotated[
    bool,
    Query(
        description="Join the rows still in Kafka that the sink has not committed (first page as of "
        "now only; the answer then has no next_cursor and says meta.lake_complete_until)."
    ),
]


async def tick_query(
    settings: ApiSettingsDep,
    symbol: Symbols = None,
    exchange: Exchange = None,
    start_time: Start = None,
    end_time: End = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    order: PageOrder = Order.ASC,
    as_of_snapshot: AsOfSnapshot = None,
    as_of_time: AsOfTime = None,
    as_of_tag: AsOfTag = None,
) -> TickQuery:
    """The query parameters every tick read takes, as one validated query."""
    names, start, end = checked_range(settings, symbol, start_time, end_time)
    return TickQuery(
        symbols=names,
        exchange=exchange,
        start=start,
        end=end,
        limit=limit,
        descending=order is Order.DESC,
        cursor=cursor,
        as_of=as_of(as_of_snapshot, as_of_time, as_of_tag),
    )


TickQueryDep = Annotated[TickQuery, Depends(tick_query)]


@router.get("/trades", response_model=RowsResponse)
def get_trades(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    tail: TailDep,
    answers: AnswersDep,
    query: TickQueryDep,
    with_quotes: Annotated[
        bool, Query(description="Add the prevailing bid/ask (as-of join) to each trade.")
    ] = False,
    quote_tolerance_ms: Annotated[
        int, Query(ge=0, le=86_400_000, description="Oldest quote that still counts as prevailing.")
    ] = 5_000,
    adjustment: Annotated[
        Adjustment, Query(description="raw, split, dividend or all: corporate-action adjusted prices.")
    ] = Adjustment.RAW,
    adjustment_as_of: Annotated[
        date | None, Query(description="Count only corporate actions on or before this day (default today).")
    ] = None,
    include_live: IncludeLive = False,
    format: Format = OutputFormat.JSON,
) -> Response:
    """Trades by symbol, exchange and time range; follow `next_cursor` for the next page, which
    reads the same snapshot. `with_quotes=true` adds the quote in force at each trade (bid, ask,
    mid, spread; null when the last quote is older than `quote_tolerance_ms`); `adjustment`
    scales prices before splits and dividends (see `adjustment_factor`). Under load the live tail
    and the quotes are left out (`meta.degraded` says so).
    """
    query = capped(request, query, format, settings.max_rows)
    with_quotes = enrichment(request, WITH_QUOTES, with_quotes)
    include_live = enrichment(request, INCLUDE_LIVE, include_live)
    if not (with_quotes or include_live) and adjustment is Adjustment.RAW:
        return cached_page(
            request,
            kind="trades",
            spec=TRADES,
            read=reader.trades,
            engine=reader.engine,
            metrics=metrics,
            settings=settings,
            answers=answers,
            query=query,
            fmt=format,
        )
    engine = duckdb_only(reader, "with_quotes, adjustment and include_live")
    if cached_only(request):
        return overloaded_response(request.scope)
    page = run_page(
        kind="trades", read=reader.trades, metrics=metrics, query=query, settings=settings, live=include_live
    )
    rows = adjust(engine, page.rows, adjustment, adjustment_as_of or datetime.now(UTC).date())
    if with_quotes:
        rows = with_prevailing_quotes(engine, rows, timedelta(milliseconds=quote_tolerance_ms), query.as_of)
    page = Page(rows, page.snapshot_id, page.next_cursor)
    if include_live:
        return live_page(request, engine, tail, TRADES, page, query, format)
    return respond(request, "trades", page, query.limit, format)


@router.get("/quotes", response_model=RowsResponse)
def get_quotes(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    tail: TailDep,
    answers: AnswersDep,
    query: TickQueryDep,
    include_live: IncludeLive = False,
    format: Format = OutputFormat.JSON,
) -> Response:
    """Best bid/ask updates by symbol, exchange and time range, in stable pages like trades."""
    query = capped(request, query, format, settings.max_rows)
    if not enrichment(request, INCLUDE_LIVE, include_live):
        return cached_page(
            request,
            kind="quotes",
            spec=QUOTES,
            read=reader.quotes,
            engine=reader.engine,
            metrics=metrics,
            settings=settings,
            answers=answers,
            query=query,
            fmt=format,
        )
    engine = duckdb_only(reader, "include_live")
    page = run_page(
        kind="quotes", read=reader.quotes, metrics=metrics, query=query, settings=settings, live=True
    )
    return live_page(request, engine, tail, QUOTES, page, query, format)
