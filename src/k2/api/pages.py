"""One page of ticks as the API answers it: run within the API's limits, optionally joined by
the Kafka tail, and encoded with its meta and pagination.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response

from k2.api import formats
from k2.api.answers import Answer, AnswerCache
from k2.api.degraded import INCLUDE_LIVE, cached_only, capped, enrichment
from k2.api.deps import MetricsDep
from k2.api.envelope import overloaded_response, request_meta
from k2.api.models import OutputFormat
from k2.api.timing import measured
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import TableSpec, table_spec
from k2.obs.metrics import K2Metrics
from k2.query import Page, TickQuery
from k2.query.engine import QueryEngine
from k2.query.errors import InvalidQueryError
from k2.query.live import with_tail
from k2.settings import ApiSettings
from k2.stream.tail import KafkaTail


def respond(request: Request, kind: str, page: Page, limit: int, fmt: OutputFormat) -> Response:
    """Encode one page with its meta and pagination."""
    if page.rows.num_rows > formats.WHOLE_ROWS:
        envelope = _envelope(request, page.snapshot_id, page.rows.num_rows, page.next_cursor, limit)
        return formats.encode(page.rows, fmt, envelope, kind, _headers(page.snapshot_id, page.next_cursor))
    return _respond(request, kind, _answer(page, fmt), limit, fmt)


def cached_page(
    request: Request,
    *,
    kind: str,
    spec: TableSpec,
    read: Callable[[TickQuery], Page],
    engine: QueryEngine,
    metrics: MetricsDep,
    settings: ApiSettings,
    answers: AnswerCache,
    query: TickQuery,
    fmt: OutputFormat,
    fields: tuple[str, ...] = (),
) -> Response:
    """One page of ``read``, answered from ``answers`` when the same request was answered from
    the same snapshot before (a cursor pins its snapshot; otherwise the snapshot ``query`` reads
    now is looked up in ``engine``'s metadata first), keeping only ``fields`` when given. From
    degradation level 2 the page is smaller; from level 3 only a kept answer is given, a 503
    otherwise.
    """
    query = capped(request, query, fmt, settings.max_rows)
    if query.limit > formats.WHOLE_ROWS:
        if cached_only(request):
            return overloaded_response(request.scope)
        page = run_page(kind=kind, read=read, metrics=metrics, query=query, settings=settings)
        return respond(request, kind, _selected(page, fields), query.limit, fmt)
    if query.cursor:
        pinned: object = ("cursor", query.cursor)
    else:
        pinned = engine.snapshot_id(engine.table(spec), query.as_of)
    key = ("page", kind, pinned, repr(query), fmt, fields)
    answer = answers.get(key) if pinned is not None else None
    if answer is None:
        if cached_only(request):
            return overloaded_response(request.scope)
        page = run_page(kind=kind, read=read, metrics=metrics, query=query, settings=settings)
        answer = _answer(_selected(page, fields), fmt)
        if page.snapshot_id is not None:
            answers.put(key, answer)
    return _respond(request, kind, answer, query.limit, fmt)


def _selected(page: Page, fields: tuple[str, ...]) -> Page:
    return Page(page.rows.select(list(fields)), page.snapshot_id, page.next_cursor) if fields else page


def _answer(page: Page, fmt: OutputFormat) -> Answer:
    return Answer(formats.rows_body(page.rows, fmt), page.rows.num_rows, page.snapshot_id, page.next_cursor)


def _respond(request: Request, kind: str, answer: Answer, limit: int, fmt: OutputFormat) -> Response:
    return formats.respond_with(
        answer.body,
        answer.count,
        fmt,
        envelope=_envelope(request, answer.snapshot_id, answer.count, answer.next_cursor, limit),
        filename=kind,
        headers=_headers(answer.snapshot_id, answer.next_cursor),
    )


def _envelope(
    request: Request, snapshot_id: int | None, count: int, next_cursor: str | None, limit: int
) -> dict[str, object]:
    return {
        "meta": {"snapshot_id": snapshot_id, "count": count, **request_meta(request.scope)},
        "pagination": {"limit": limit, "next_cursor": next_cursor},
    }


def _headers(snapshot_id: int | None, next_cursor: str | None) -> dict[str, str]:
    headers = {"X-Snapshot-Id": str(snapshot_id)} if snapshot_id is not None else {}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return headers


def run_page(
    *,
    kind: str,
    read: Callable[[TickQuery], Page],
    metrics: MetricsDep,
    query: TickQuery,
    settings: ApiSettings,
    live: bool = False,
) -> Page:
    """Run a tick query within the API's limits, timing it. With ``live`` (the Kafka tail joins
    the page), a table the sink has not created yet is an empty page rather than an error: the
    tail then answers alone.
    """
    if query.limit > settings.max_rows:
        raise InvalidQueryError(f"limit may be at most {settings.max_rows}")
    with measured(metrics, kind):
        try:
            page = read(query)
        except TableNotFoundError:
            if not live:
                raise
            page = Page(table_spec(kind).record.arrow_schema().empty_table(), None, None)
    metrics.query_rows.labels(query=kind).inc(page.rows.num_rows)
    return page


def live_page(
    request: Request,
    engine: QueryEngine,
    tail: KafkaTail | None,
    spec: TableSpec,
    page: Page,
    query: TickQuery,
    fmt: OutputFormat,
) -> Response:
    """Respond with ``page`` joined by the tail rows matching ``query``, and the lake's watermark;
    from degradation level 1, with ``page`` alone (the answer says ``include_live`` was reduced).
    """
    if not enrichment(request, INCLUDE_LIVE, asked=True):
        return respond(request, spec.name, page, query.limit, fmt)
    if tail is None:
        raise InvalidQueryError(
            "live rows need Kafka: run on the platform (K2_PROFILE=platform) "
            "or set K2_KAFKA_BOOTSTRAP_SERVERS"
        )
    try:
        table = engine.table(spec)
    except TableNotFoundError:
        table = None
    read = tail.read(spec, table)
    rows, live_rows = with_tail(page.rows, read.rows, query)
    metrics: K2Metrics = request.app.state.metrics
    metrics.query_live_rows.labels(spec.name).inc(live_rows)
    envelope = {
        "meta": {
            "snapshot_id": page.snapshot_id,
            "count": rows.num_rows,
            "live_rows": live_rows,
            "lake_complete_until": read.lake_complete_until,
            **request_meta(request.scope),
        },
        "pagination": {"limit": query.limit, "next_cursor": None},
    }
    headers = {"X-Snapshot-Id": str(page.snapshot_id)} if page.snapshot_id is not None else {}
    return formats.encode(rows, fmt, envelope, spec.name, headers)
