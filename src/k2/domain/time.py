"""Instants and exchange-local days. Every instant K2 stores is UTC, to the microsecond."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from k2.errors import InvalidInputError


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Convert a venue wall-clock time to UTC.

    Args:
        local: a naive datetime read off the venue's clock.
        zone: the venue's time zone.

    Returns:
        The same instant, UTC-aware.

    Raises:
        InvalidInputError: when the wall-clock time does not exist (the spring-forward gap) or
            happens twice (the fall-back hour) in ``zone``.
    """
    if local.tzinfo is not None:
        raise InvalidInputError(f"expected a naive wall-clock time, got {local!r}")
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise InvalidInputError(f"{local} is ambiguous or does not exist in {zone.key}")
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        raise InvalidInputError(f"{local} does not exist in {zone.key}")
    return first.astimezone(UTC)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where the venue-local calendar ``day`` starts and the next day starts."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    return start, end


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 date or date-time into a UTC instant.

    A value without an offset is taken as UTC; a bare date means its midnight UTC.

    Raises:
        InvalidInputError: when ``text`` is not ISO-8601.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidInputError(f"not an ISO-8601 date or time: {text!r}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_micros(instant: datetime) -> int:
    """Microseconds since the epoch of a UTC-aware instant."""
    delta = instant - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def utc_text(instant: datetime) -> str:
    """``instant`` as K2 writes every time: ISO-8601 in UTC, always with microseconds, and ``Z``
    (``2014-03-09T23:29:42.000000Z``), so times keep one width and compare as text. A naive
    ``instant`` is taken as UTC.
    """
    utc = instant.astimezone(UTC).replace(tzinfo=None) if instant.tzinfo else instant
    return utc.isoformat(timespec="microseconds") + "Z"
