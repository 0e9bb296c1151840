"""Fresh data: the lake joined by the Kafka tail the sink has not committed yet.

``GET /v1/trades/recent`` and ``/v1/quotes/recent`` read the last minutes; ``include_live=true``
on ``GET /v1/trades`` and ``/v1/quotes`` does the same for any range read as of now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from k2.api.deps import ApiSettingsDep, CallerDep, EngineDep, MetricsDep, TailDep
from k2.api.models import OutputFormat, RowsResponse
from k2.api.pages import live_page, run_page
from k2.api.params import Exchange, Format, Symbols, checked_range
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.query import TickQuery, quotes, trades
from k2.query.engine import QueryEngine
from k2.stream.tail import KafkaTail

router = APIRouter(prefix="/v1", tags=["live"])

Minutes = Annotated[int, Query(ge=1, le=1440, description="How far back from now to read.")]
RecentLimit = Annotated[int, Query(ge=1, description="Most rows returned, newest first.")]


def _recent(
    request: Request,
    settings: ApiSettingsDep,
    engine: QueryEngine,
    metrics: MetricsDep,
    tail: KafkaTail | None,
    spec: TableSpec,
    symbols: list[str] | None,
    exchange: str | None,
    minutes: int,
    limit: int,
    fmt: OutputFormat,
) -> Response:
    now = datetime.now(UTC)
    names, start, end = checked_range(
        settings, symbols, now - timedelta(minutes=minutes), now + timedelta(seconds=1)
    )
    query = TickQuery(symbols=names, exchange=exchange, start=start, end=end, limit=limit, descending=True)
    read = trades if spec is TRADES else quotes
    page = run_page(kind=spec.name, read=read, engine=engine, metrics=metrics, query=query, settings=settings)
    return live_page(request, engine, tail, spec, page, query, fmt)


@router.get("/trades/recent", response_model=RowsResponse)
def get_recent_trades(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    engine: EngineDep,
    metrics: MetricsDep,
    tail: TailDep,
    symbol: Symbols = None,
    exchange: Exchange = None,
    minutes: Minutes = 15,
    limit: RecentLimit = 100,
    format: Format = OutputFormat.JSON,
) -> Response:
    """The newest trades of the last `minutes`, including those still in Kafka that the sink has
    not committed; `meta.lake_complete_until` says up to when the lake alone is complete.
    """
    return _recent(request, settings, engine, metrics, tail, TRADES, symbol, exchange, minutes, limit, format)


@router.get("/quotes/recent", response_model=RowsResponse)
def get_recent_quotes(
    request: Request,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    engine: EngineDep,
    metrics: MetricsDep,
    tail: TailDep,
    symbol: Symbols = None,
    exchange: Exchange = None,
    minutes: Minutes = 15,
    limit: RecentLimit = 100,
    format: Format = OutputFormat.JSON,
) -> Response:
    """The newest quotes of the last `minutes`, Kafka's uncommitted tail included."""
    return _recent(request, settings, engine, metrics, tail, QUOTES, symbol, exchange, minutes, limit, format)
