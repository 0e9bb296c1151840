"""``GET /v1/summary/{symbol}/{day}``: a symbol's trading day on its venue."""

from __future__ import annotations

from dataclasses import asdict
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

#: The summary's old name for ``day``, answered beside it until the next release.
DEPRECATED_DAY_ALIAS = "date"


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
    from 13:00 UTC the day before in March). The fields are named as `k2 query summary` names
    them; `date` repeats `day` for one release (deprecated).
    """
    with measured(metrics, "summary"):
        result = reader.daily_summary(
            symbol.upper(), day, exchange, as_of(as_of_snapshot, as_of_time, as_of_tag)
        )
        if result is None:
            raise SymbolNotFoundError(f"no trades of {symbol.upper()} on {day}")
    # The fields the CLI answers too (DailySummary's); "date" is kept for one release as an alias
    # of "day" (deprecated, see docs/design.md "One vocabulary").
    data: dict[str, Any] = asdict(result)
    data[DEPRECATED_DAY_ALIAS] = result.day
    return formats.one({"data": data, "meta": request_meta(request.scope)})
