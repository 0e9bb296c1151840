"""POST reads: ``/v1/trades/query``, ``/v1/quotes/query``, ``/v1/snapshots/{id}/query`` and
``/v1/replay`` — several symbols, column choice, time travel, replay with progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from k2.api import formats
from k2.api.degraded import capped
from k2.api.deps import AnswersDep, ApiSettingsDep, CallerDep, MetricsDep, ReaderDep
from k2.api.envelope import request_meta
from k2.api.models import (
    Order,
    ReplayBody,
    RowsQueryBody,
    RowsResponse,
    SnapshotQueryBody,
    TickQueryBody,
    TickTable,
)
from k2.api.pages import cached_page
from k2.api.params import as_of, checked_range
from k2.lake.tables import table_spec
from k2.query import Page, TickQuery, replay
from k2.query.engine import AsOf
from k2.query.errors import InvalidQueryError
from k2.query.reader import Reader, duckdb_only
from k2.settings import ApiSettings

router = APIRouter(prefix="/v1", tags=["queries"])


def _fields(fields: list[str] | None, table: TickTable) -> tuple[str, ...]:
    """The columns asked for, each once (none: all).

    Raises:
        InvalidQueryError: for a field the table does not have.
    """
    if not fields:
        return ()
    known = table_spec(table.value).record.names
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise InvalidQueryError(f"unknown fields for {table.value}: {', '.join(unknown)}")
    return tuple(dict.fromkeys(fields))


def _body_query(
    settings: ApiSettings, body: RowsQueryBody, point: AsOf, *, descending: bool = False
) -> TickQuery:
    """The tick query a POST body asks for, within the configured limits."""
    names, start, end = checked_range(settings, body.symbols, body.start_time, body.end_time)
    return TickQuery(
        symbols=names,
        exchange=body.exchange,
        start=start,
        end=end,
        limit=body.limit,
        descending=descending,
        cursor=body.cursor,
        as_of=point,
    )


def _read(reader: Reader, table: TickTable) -> Callable[[TickQuery], Page]:
    """The read of ``table``'s pages."""
    return reader.trades if table is TickTable.TRADES else reader.quotes


def _post(table: TickTable) -> Callable[..., Response]:
    def endpoint(
        request: Request,
        body: TickQueryBody,
        _caller: CallerDep,
        settings: ApiSettingsDep,
        reader: ReaderDep,
        metrics: MetricsDep,
        answers: AnswersDep,
    ) -> Response:
        point = as_of(body.as_of_snapshot, body.as_of_time, body.as_of_tag)
        query = _body_query(settings, body, point, descending=body.order is Order.DESC)
        return cached_page(
            request,
            kind=table.value,
            spec=table_spec(table.value),
            read=_read(reader, table),
            engine=reader.engine,
            metrics=metrics,
            settings=settings,
            answers=answers,
            query=query,
            fmt=body.format,
            fields=_fields(body.fields, table),
        )

    endpoint.__name__ = f"query_{table.value}"
    endpoint.__doc__ = (
        f"{table.value.capitalize()} for several symbols with a choice of fields and formats; "
        "pages follow `next_cursor` on the same snapshot."
    )
    return endpoint


for _table in TickTable:
    router.add_api_route(
        f"/{_table.value}/query",
        _post(_table),
        methods=["POST"],
        response_model=RowsResponse,
    )


@router.post("/snapshots/{snapshot_id}/query", response_model=RowsResponse)
def query_snapshot(
    request: Request,
    snapshot_id: Annotated[int, Path(ge=0)],
    body: SnapshotQueryBody,
    _caller: CallerDep,
    settings: ApiSettingsDep,
    reader: ReaderDep,
    metrics: MetricsDep,
    answers: AnswersDep,
) -> Response:
    """Rows exactly as they were in one snapshot (an audit view); 404 for an unknown snapshot."""
    query = _body_query(settings, body, AsOf(snapshot_id=snapshot_id))
    kind = body.data_type.value
    return cached_page(
        request,
        kind=kind,
        spec=table_spec(kind),
        read=_read(reader, body.data_type),
        engine=reader.engine,
        metrics=metrics,
        settings=settings,
        answers=answers,
        query=query,
        fmt=body.format,
        fields=_fields(body.fields, body.data_type),
    )


@router.post("/replay", response_model=RowsResponse)
def replay_range(
    request: Request, body: ReplayBody, _caller: CallerDep, settings: ApiSettingsDep, reader: ReaderDep
) -> Response:
    """Replay a time range in event order (timestamp, then exchange sequence), page by page from
    one snapshot, with progress. Pass `cursor` from the previous page to continue.
    """
    engine = duckdb_only(reader, "replay")
    if body.batch_size > settings.max_rows:
        raise InvalidQueryError(f"batch_size may be at most {settings.max_rows}")
    names, start, end = checked_range(settings, body.symbols, body.start_time, body.end_time)
    query = TickQuery(
        symbols=names,
        exchange=body.exchange,
        start=start,
        end=end,
        limit=body.batch_size,
        cursor=body.cursor,
        as_of=AsOf(snapshot_id=body.snapshot_id),
    )
    query = capped(request, query, body.format, settings.max_rows)
    result = replay(engine, table_spec(body.data_type.value), query)
    page = result.page
    envelope = {
        "meta": {"snapshot_id": page.snapshot_id, "count": page.rows.num_rows, **request_meta(request.scope)},
        "pagination": {"limit": query.limit, "next_cursor": page.next_cursor},
        "progress": {
            "delivered": result.delivered,
            "total": result.total,
            "percent": result.progress_percent,
            "done": page.next_cursor is None,
        },
    }
    headers = {"X-Snapshot-Id": str(page.snapshot_id)} if page.snapshot_id is not None else {}
    return formats.encode(page.rows, body.format, envelope, f"replay_{body.data_type.value}", headers)
