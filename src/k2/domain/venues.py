"""Venues: their code, time zone, currency and trading session, kept as data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo

from k2.domain.events import AssetClass
from k2.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class Venue:
    """A trading venue; ``timezone`` is the IANA zone of its wall clock.

    ``whole_hour_offsets`` says the zone's UTC offset is always a whole number of hours, so bars
    of up to an hour line up the same on UTC and on the venue's clock.
    """

    code: str
    name: str
    timezone: str
    currency: str
    asset_class: AssetClass
    session_open: time
    session_close: time
    whole_hour_offsets: bool = True

    @property
    def zone(self) -> ZoneInfo:
        """The venue's time zone."""
        return ZoneInfo(self.timezone)


VENUES: dict[str, Venue] = {
    v.code: v
    for v in (
        Venue(
            "ASX",
            "Australian Securities Exchange",
            "Australia/Sydney",
            "AUD",
            AssetClass.EQUITIES,
            time(10, 0),
            time(16, 0),
        ),
        Venue("BINANCE", "Binance spot", "UTC", "USDT", AssetClass.CRYPTO, time(0, 0), time(23, 59, 59)),
        Venue(
            "SYN",
            "K2 synthetic equities market (Sydney hours)",
            "Australia/Sydney",
            "AUD",
            AssetClass.EQUITIES,
            time(10, 0),
            time(16, 0),
        ),
    )
}


def venue(code: str) -> Venue:
    """The venue with this code (case-insensitive).

    Raises:
        NotFoundError: for an unknown code.
    """
    try:
        return VENUES[code.upper()]
    except KeyError:
        raise NotFoundError(f"unknown exchange {code!r}; known: {', '.join(sorted(VENUES))}") from None
