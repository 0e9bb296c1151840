"""``GET /v1/symbols``, ``/v1/stats``, ``/v1/snapshots`` and ``/v1/loads``: what the lake holds,
from metadata.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from k2.api import formats
from k2.api.deps import CallerDep, EngineDep, MetricsDep
from k2.api.envelope import request_meta
from k2.api.models import TickTable
from k2.api.params import AsOfSnapshot, AsOfTag, AsOfTime, Exchange, as_of
from k2.api.timing import measured
from k2.lake.tables import table_spec
from k2.query import loads, snapshots, stats, symbols

router = APIRouter(prefix="/v1", tags=["metadata"])


TableParam = Annotated[TickTable, Query(description="trades or quotes.")]
ListLimit = Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")]


def _meta(request: Request) -> dict[str, object]:
    return request_meta(request.scope)


@router.get("/symbols")
def get_symbols(
    request: Request,
    _caller: CallerDep,
    engine: EngineDep,
    metrics: MetricsDep,
    exchange: Exchange = None,
    table: TableParam = TickTable.TRADES,
    as_of_snapshot: AsOfSnapshot = None,
    as_of_time: AsOfTime = None,
    as_of_tag: AsOfTag = None,
) -> Response:
    """Symbols present in a table, per exchange, from table metadata (no data scan)."""
    with measured(metrics, "symbols"):
        pairs = symbols(
            engine, exchange, table_spec(table.value), as_of(as_of_snapshot, as_of_time, as_of_tag)
        )
    return formats.one({"data": [{"exchange": e, "symbol": s} for e, s in pairs], "meta": _meta(request)})


@router.get("/stats")
def get_stats(request: Request, _caller: CallerDep, engine: EngineDep, metrics: MetricsDep) -> Response:
    """Rows, files, bytes, partitions, day span and symbol count of the trades and quotes tables."""
    with measured(metrics, "stats"):
        found = stats(engine)
    return formats.one({"data": [asdict(s) for s in found], "meta": _meta(request)})


@router.get("/snapshots")
def get_snapshots(
    request: Request,
    _caller: CallerDep,
    engine: EngineDep,
    metrics: MetricsDep,
    table: TableParam = TickTable.TRADES,
    limit: ListLimit = 20,
) -> Response:
    """A table's snapshots, newest first, with the writer and the load that made each, the Kafka
    offsets a stream commit records, and the tags on it.
    """
    with measured(metrics, "snapshots"):
        listed = snapshots(engine, table_spec(table.value))[:limit]
    return formats.one({"data": [asdict(s) for s in listed], "meta": _meta(request)})


@router.get("/loads")
def get_loads(
    request: Request,
    _caller: CallerDep,
    engine: EngineDep,
    metrics: MetricsDep,
    table: TableParam = TickTable.TRADES,
    limit: ListLimit = 20,
) -> Response:
    """The loads that committed to a table, newest first: their commits, rows written, and the
    rows they rejected with the name of their reject file.
    """
    with measured(metrics, "loads"):
        listed = loads(engine, table_spec(table.value), limit)
    return formats.one({"data": [asdict(load) for load in listed], "meta": _meta(request)})
