"""Shapes of the API's JSON bodies, separate from the domain types they carry."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


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
    details: list[ErrorDetail] = Field(default_factory=list, description="Per-field problems.")


class ErrorBody(BaseModel):
    """Every 4xx and 5xx response has this body."""

    error: ErrorInfo


class Meta(BaseModel):
    """Facts about a data response."""

    snapshot_id: int | None = Field(description="Iceberg snapshot the rows were read from.")
    count: int = Field(description="Rows in this response.")
    correlation_id: str = Field(description="The request's correlation id.")


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

    status: str = Field(description="ok, or unavailable (with HTTP 503).")
    version: str
    checked_at: datetime
    dependencies: list[DependencyHealth]
