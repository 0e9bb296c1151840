"""Shapes of the API's JSON bodies, separate from the domain types they carry."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from k2.domain.bars import DEFAULT_METRICS, Metric
from k2.domain.time import utc_text

#: A time in an answer, written as every K2 time is (:func:`~k2.domain.time.utc_text`).
UtcTime = Annotated[datetime, PlainSerializer(utc_text, return_type=str, when_used="json")]


class OutputFormat(StrEnum):
    """How a data endpoint encodes its rows."""

    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    ARROW = "arrow"


class Order(StrEnum):
    """Row order by event time."""

    ASC = "asc"
    DESC = "desc"


class ErrorDetail(BaseModel):
    """One problem with one field of the request."""

    field: str = Field(description="Where the problem is, e.g. query.limit.")
    message: str = Field(description="What is wrong with it.")


class ErrorInfo(BaseModel):
    """What went wrong, in a form that does not change between releases."""

    code: str = Field(description="Stable machine-readable code, e.g. INVALID_PARAMETER.")
    message: str = Field(description="Human-readable explanation; never internals.")
    correlation_id: str = Field(description="Quote this when reporting the problem.")
    details: list[ErrorDetail] | dict[str, int] = Field(
        default_factory=list,
        description='Per-field problems; for a 503 OVERLOADED, the degradation level (`{"level": 4}`).',
    )


class ErrorBody(BaseModel):
    """Every 4xx and 5xx response has this body."""

    error: ErrorInfo


class DegradedMeta(BaseModel):
    """How a response answered under load was reduced (docs/operations/degradation.md)."""

    level: int = Field(ge=1, le=4, description="The degradation level the request was answered at.")
    reduced: list[str] = Field(
        description="What the answer left out or shrank: include_live, with_quotes, page_size, export_size."
    )


class Meta(BaseModel):
    """Facts about a data response."""

    snapshot_id: int | None = Field(description="Iceberg snapshot the rows were read from.")
    count: int = Field(description="Rows in this response.")
    correlation_id: str = Field(description="The request's correlation id.")
    degraded: DegradedMeta | None = Field(
        None, description="Present when the API answered in a degraded mode (header X-K2-Degraded too)."
    )


class Pagination(BaseModel):
    """Where the next page starts."""

    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class RowsResponse(BaseModel):
    """A page of rows (decimals as strings, times as ISO-8601 UTC)."""

    data: list[dict[str, Any]]
    meta: Meta
    pagination: Pagination | None = None


class DependencyHealth(BaseModel):
    """One dependency's state."""

    name: str
    status: str = Field(description="ok or failing.")
    latency_ms: float
    message: str | None = None


class HealthResponse(BaseModel):
    """Whether K2 can serve, dependency by dependency."""

    status: str = Field(description="ok, or unavailable (readiness only, with HTTP 503).")
    version: str
    checked_at: UtcTime
    dependencies: list[DependencyHealth] = Field(
        description="Each dependency probed (readiness only; liveness probes none)."
    )
    breakers: dict[str, str] = Field(
        default_factory=dict,
        description="Each dependency's circuit breaker: closed, open (calls refused with 503) or half_open.",
    )


Symbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$")]
ExchangeCode = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,15}$")]
TagName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class TickTable(StrEnum):
    """The market-data tables."""

    TRADES = "trades"
    QUOTES = "quotes"


class TimeTravel(BaseModel):
    """Read the table as it was: at most one of these."""

    as_of_snapshot: int | None = Field(None, ge=0, description="Iceberg snapshot id.")
    as_of_time: datetime | None = Field(None, description="The snapshot current at this instant.")
    as_of_tag: TagName | None = Field(None, description="The snapshot this tag names.")


class RowsQueryBody(BaseModel):
    """What a POST read of trades or quotes selects."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] = Field(default_factory=list, description="Symbols; empty means all.")
    exchange: ExchangeCode | None = None
    start_time: datetime | None = Field(None, description="Inclusive; UTC if no offset.")
    end_time: datetime | None = Field(None, description="Exclusive; UTC if no offset.")
    fields: list[str] | None = Field(None, description="Columns to return; default all.")
    limit: int = Field(1000, ge=1, description="Rows per page (at most K2_API_MAX_ROWS).")
    cursor: str | None = Field(None, max_length=512, description="next_cursor of the previous page.")
    format: OutputFormat = OutputFormat.JSON


class TickQueryBody(RowsQueryBody, TimeTravel):
    """A trades or quotes read with several symbols and a choice of columns."""

    order: Order = Order.ASC


class SnapshotQueryBody(RowsQueryBody):
    """A read pinned to one snapshot (the path names it)."""

    data_type: TickTable = TickTable.TRADES


class ReplayBody(BaseModel):
    """Replay a time range in event order, page by page, pinned to one snapshot."""

    model_config = ConfigDict(extra="forbid")

    data_type: TickTable = TickTable.TRADES
    symbols: list[Symbol] = Field(default_factory=list)
    exchange: ExchangeCode | None = None
    start_time: datetime = Field(description="Inclusive; UTC if no offset.")
    end_time: datetime = Field(description="Exclusive; UTC if no offset.")
    batch_size: int = Field(1000, ge=1, le=100_000)
    snapshot_id: int | None = Field(None, ge=0, description="Pin to this snapshot; default the current one.")
    cursor: str | None = Field(None, max_length=512)
    format: OutputFormat = OutputFormat.JSON


class BarInterval(StrEnum):
    """Bucket sizes of aggregations (seconds for a chart zoomed into minutes)."""

    S1 = "1s"
    S5 = "5s"
    S15 = "15s"
    S30 = "30s"
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    D1 = "1d"


class AggregationBody(TimeTravel):
    """Bucketed OHLCV, VWAP, TWAP and trade counts."""

    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] = Field(min_length=1, description="At most K2_API_MAX_SYMBOLS.")
    metrics: list[Metric] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    interval: BarInterval = BarInterval.M1
    exchange: ExchangeCode | None = None
    start_time: datetime
    end_time: datetime
    format: OutputFormat = OutputFormat.JSON
