"""``GET /v1/summary/{symbol}/{date}``: a symbol's trading day on its venue."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from k2.api import formats
from k2.api.deps import CallerDep, MetricsDep, ReaderDep
from k2.api.envelope import request_meta
from k2.api.params import SYMBOL_PATTERN, AsOfSnapshot, AsOfTag, AsOfTime, Exchange, as_of
from k2.api.timing import measured
from k2.query.errors import SymbolNotFoundError

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/summary/{symbol}/{day}")
def get_summary(
    request: Request,
    _caller: CallerDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    symbol: Annotated[str, Path(pattern=SYMBOL_PATTERN, description="Symbol, e.g. BHP.")],
    day: Annotated[date, Path(description="The venue-local trading day, YYYY-MM-DD.")],
    exchange: Exchange = None,
    as_of_snapshot: AsOfSnapshot = None,
    as_of_time: AsOfTime = None,
    as_of_tag: AsOfTag = None,
) -> Response:
    """Open, high, low, close, volume, trade count and VWAP on the exchange-local day.

    Prices are exact decimals (strings); the day is the venue's calendar day (an ASX day runs
    from 13:00 UTC the day before in March).
    """
    with measured(metrics, "summary"):
        result = reader.daily_summary(
            symbol.upper(), day, exchange, as_of(as_of_snapshot, as_of_time, as_of_tag)
        )
        if result is None:
            raise SymbolNotFoundError(f"no trades of {symbol.upper()} on {day}")
    data: dict[str, Any] = {
        "symbol": result.symbol,
        "exchange": result.exchange,
        "date": result.day,
        "open": result.open,
        "high": result.high,
        "low": result.low,
        "close": result.close,
        "volume": result.volume,
        "trade_count": result.trade_count,
        "vwap": result.vwap,
        "first_trade_time": result.first_trade,
        "last_trade_time": result.last_trade,
    }
    return formats.one({"data": data, "meta": request_meta(request.scope)})
