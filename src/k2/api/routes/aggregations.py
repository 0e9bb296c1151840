"""``POST /v1/aggregations``: OHLCV, VWAP, TWAP and counts per bucket on the venue's clock."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from k2.api import formats
from k2.api.answers import Answer
from k2.api.degraded import cached_only
from k2.api.deps import AnswersDep, ApiSettingsDep, CallerDep, MetricsDep, ReaderDep
from k2.api.envelope import overloaded_response, request_meta
from k2.api.models import AggregationBody
from k2.api.params import as_of, checked_range
from k2.api.timing import measured
from k2.domain.bars import Interval
from k2.lake.tables import TRADES
from k2.query import BarQuery, aggregations
from k2.query.errors import InvalidQueryError

router = APIRouter(prefix="/v1", tags=["analytics"])

MAX_BUCKETS = 1_000_000


@router.post("/aggregations")
def aggregate(
    request: Request,
    body: AggregationBody,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    answers: AnswersDep,
) -> Response:
    """Buckets of 1s … 1d per symbol: `ohlcv`, `vwap`, `twap` (each price weighted by the time
    it stood) and `trade_count`. Daily buckets are the venue's trading days.
    """
    names, start, end = checked_range(settings, body.symbols, body.start_time, body.end_time)
    interval = Interval.parse(body.interval.value)
    assert start is not None
    assert end is not None
    buckets = len(names) * int((end - start).total_seconds() // interval.seconds + 1)
    if buckets > MAX_BUCKETS:
        raise InvalidQueryError(f"that asks for {buckets} buckets; at most {MAX_BUCKETS}")
    query = BarQuery(
        interval,
        symbols=names,
        exchange=body.exchange,
        start=start,
        end=end,
        as_of=as_of(body.as_of_snapshot, body.as_of_time, body.as_of_tag),
    )
    envelope: dict[str, object] = {"interval": str(interval), **request_meta(request.scope)}
    snapshot = reader.engine.snapshot_id(reader.engine.table(TRADES), query.as_of)
    key = ("aggregations", snapshot, body.model_dump_json())
    answer = answers.get(key) if snapshot is not None else None
    if answer is None:
        if cached_only(request):
            return overloaded_response(request.scope)
        with measured(metrics, "bars"):
            result = aggregations.aggregate(reader, query, body.metrics)
        metrics.query_rows.labels(query="bars").inc(result.num_rows)
        if result.num_rows > formats.WHOLE_ROWS:
            meta = {"meta": {"count": result.num_rows, **envelope}}
            return formats.encode(result, body.format, meta, "aggregations", {})
        answer = Answer(formats.rows_body(result, body.format), result.num_rows)
        if snapshot is not None:
            answers.put(key, answer)
    meta = {"meta": {"count": answer.count, **envelope}}
    return formats.respond_with(
        answer.body, answer.count, body.format, envelope=meta, filename="aggregations", headers={}
    )
