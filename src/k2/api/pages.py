"""One page of ticks as the API answers it: run within the API's limits, optionally joined by
the Kafka tail, and encoded with its meta and pagination.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import Request, Response

from k2.api import formats
from k2.api.deps import MetricsDep
from k2.api.envelope import correlation_id_of
from k2.api.models import OutputFormat
from k2.lake.errors import TableNotFoundError
from k2.lake.tables import TableSpec
from k2.query import Page, TickQuery
from k2.query.engine import QueryEngine
from k2.query.errors import InvalidQueryError
from k2.query.live import with_tail
from k2.settings import ApiSettings
from k2.stream.tail import KafkaTail


def respond(request: Request, kind: str, page: Page, limit: int, fmt: OutputFormat) -> Response:
    """Encode one page with its meta and pagination."""
    envelope = {
        "meta": {
            "snapshot_id": page.snapshot_id,
            "count": page.rows.num_rows,
            "correlation_id": correlation_id_of(request.scope),
        },
        "pagination": {"limit": limit, "next_cursor": page.next_cursor},
    }
    headers = {"X-Snapshot-Id": str(page.snapshot_id)} if page.snapshot_id is not None else {}
    if page.next_cursor:
        headers["X-Next-Cursor"] = page.next_cursor
    return formats.encode(page.rows, fmt, envelope, kind, headers)


def run_page(
    *,
    kind: str,
    read: Callable[[QueryEngine, TickQuery], Page],
    engine: QueryEngine,
    metrics: MetricsDep,
    query: TickQuery,
    settings: ApiSettings,
) -> Page:
    """Run a tick query within the API's limits, timing it."""
    if query.limit > settings.max_rows:
        raise InvalidQueryError(f"limit may be at most {settings.max_rows}")
    began = time.perf_counter()
    page = read(engine, query)
    metrics.query_duration.labels(query=kind).observe(time.perf_counter() - began)
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
    """Respond with ``page`` joined by the tail rows matching ``query``, and the lake's watermark."""
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
    envelope = {
        "meta": {
            "snapshot_id": page.snapshot_id,
            "count": rows.num_rows,
            "live_rows": live_rows,
            "lake_complete_until": read.lake_complete_until,
            "correlation_id": correlation_id_of(request.scope),
        },
        "pagination": {"limit": query.limit, "next_cursor": None},
    }
    headers = {"X-Snapshot-Id": str(page.snapshot_id)} if page.snapshot_id is not None else {}
    return formats.encode(rows, fmt, envelope, spec.name, headers)
