"""Query parameters shared by the data endpoints, validated by type and bounded by settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query

from k2.api.deps import ApiSettingsDep
from k2.api.models import OutputFormat
from k2.query.engine import AsOf
from k2.query.errors import InvalidQueryError

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$"
EXCHANGE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,15}$"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

Symbols = Annotated[
    list[Annotated[str, Query(pattern=SYMBOL_PATTERN)]] | None,
    Query(alias="symbol", description="Symbol; repeat for several (symbol=BHP&symbol=RIO)."),
]
Exchange = Annotated[str | None, Query(pattern=EXCHANGE_PATTERN, description="Exchange code, e.g. ASX.")]
Start = Annotated[
    datetime | None, Query(description="From this instant, inclusive (ISO-8601; UTC if no offset).")
]
End = Annotated[
    datetime | None, Query(description="Before this instant, exclusive (ISO-8601; UTC if no offset).")
]
Format = Annotated[OutputFormat, Query(description="json, csv, parquet or arrow (IPC stream).")]
AsOfSnapshot = Annotated[int | None, Query(ge=0, description="Read this Iceberg snapshot id.")]
AsOfTime = Annotated[datetime | None, Query(description="Read the table as it was at this instant.")]
AsOfTag = Annotated[str | None, Query(pattern=TAG_PATTERN, description="Read the snapshot this tag names.")]


def utc(value: datetime | None) -> datetime | None:
    """``value`` as a UTC-aware instant; a value without offset is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_of(snapshot: int | None, at: datetime | None, tag: str | None) -> AsOf:
    """The point in history the parameters name.

    Raises:
        InvalidQueryError: when more than one is given.
    """
    return AsOf(snapshot_id=snapshot, time=utc(at), tag=tag)


def checked_range(
    settings: ApiSettingsDep, symbols: list[str] | None, start: datetime | None, end: datetime | None
) -> tuple[tuple[str, ...], datetime | None, datetime | None]:
    """Normalised symbols and range, within the configured limits.

    Raises:
        InvalidQueryError: for too many symbols, an empty range or one longer than allowed.
    """
    names = tuple(symbols or ())
    if len(names) > settings.max_symbols:
        raise InvalidQueryError(f"at most {settings.max_symbols} symbols per request")
    first, last = utc(start), utc(end)
    if first and last:
        if first >= last:
            raise InvalidQueryError("start_time must be before end_time")
        if last - first > timedelta(days=settings.max_span_days):
            raise InvalidQueryError(f"a request may span at most {settings.max_span_days} days")
    return names, first, last
