"""Fresh data: the lake joined by the Kafka tail the sink has not committed yet.

``GET /v1/trades/recent`` and ``/v1/quotes/recent`` read the last minutes; ``include_live=true``
on ``GET /v1/trades`` and ``/v1/quotes`` does the same for any range read as of now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from k2.api.degraded import capped
from k2.api.deps import ApiSettingsDep, CallerDep, MetricsDep, ReaderDep, TailDep
from k2.api.models import OutputFormat, RowsResponse
from k2.api.pages import live_page, run_page
from k2.api.params import Exchange, Format, Symbols, checked_range
from k2.lake.tables import QUOTES, TRADES
from k2.query import TickQuery
from k2.query.reader import duckdb_only

router = APIRouter(prefix="/v1", tags=["live"])

Minutes = Annotated[int, Query(ge=1, le=1440, description="How far back from now to read.")]
RecentLimit = Annotated[int, Query(ge=1, description="Most rows returned, newest first.")]


async def recent_query(
    settings: ApiSettingsDep,
    symbol: Symbols = None,
    exchange: Exchange = None,
    minutes: Minutes = 15,
    limit: RecentLimit = 100,
) -> TickQuery:
    """The last ``minutes`` up to now, newest first."""
    now = datetime.now(UTC)
    since, until = now - timedelta(minutes=minutes), now + timedelta(seconds=1)
    names, start, end = checked_range(settings, symbol, since, until)
    return TickQuery(symbols=names, exchange=exchange, start=start, end=end, limit=limit, descending=True)


RecentQueryDep = Annotated[TickQuery, Depends(recent_query)]


@router.get("/trades/recent", response_model=RowsResponse)
def get_recent_trades(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    tail: TailDep,
    query: RecentQueryDep,
    format: Format = OutputFormat.JSON,
) -> Response:
    """The newest trades of the last `minutes`, including those still in Kafka that the sink has
    not committed; `meta.lake_complete_until` says up to when the lake alone is complete.
    """
    engine = duckdb_only(reader, "the live tail (/v1/trades/recent)")
    query = capped(request, query, format, settings.max_rows)
    page = run_page(
        kind="trades", read=reader.trades, metrics=metrics, query=query, settings=settings, live=True
    )
    return live_page(request, engine, tail, TRADES, page, query, format)


@router.get("/quotes/recent", response_model=RowsResponse)
def get_recent_quotes(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    tail: TailDep,
    query: RecentQueryDep,
    format: Format = OutputFormat.JSON,
) -> Response:
    """The newest quotes of the last `minutes`, Kafka's uncommitted tail included."""
    engine = duckdb_only(reader, "the live tail (/v1/quotes/recent)")
    query = capped(request, query, format, settings.max_rows)
    page = run_page(
        kind="quotes", read=reader.quotes, metrics=metrics, query=query, settings=settings, live=True
    )
    return live_page(request, engine, tail, QUOTES, page, query, format)
