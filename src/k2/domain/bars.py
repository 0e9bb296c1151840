"""Bar intervals, and the metrics a bar answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from k2.errors import InvalidInputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"(\d{1,4})([smhd])")


@dataclass(frozen=True, slots=True)
class Interval:
    """A bar length such as ``1m`` or ``1d``.

    Intervals shorter than a day must divide a day evenly, so buckets align the same way every
    day; a day interval means the venue's local calendar day.
    """

    count: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse ``<N><s|m|h|d>``.

        Raises:
            InvalidInputError: for any other text, a zero count, a sub-day interval that does
                not divide a day, or more than one day.
        """
        match = _PATTERN.fullmatch(text.strip().lower())
        if match is None:
            raise InvalidInputError(f"interval must look like 1s, 5m, 1h or 1d, got {text!r}")
        interval = cls(int(match.group(1)), match.group(2))
        seconds = interval.seconds
        if seconds == 0 or seconds > 86400 or 86400 % seconds != 0:
            raise InvalidInputError(f"interval {text!r} must be at most one day and divide a day evenly")
        return interval

    @property
    def seconds(self) -> int:
        """Length in seconds."""
        return self.count * _UNITS[self.unit]

    @property
    def is_daily(self) -> bool:
        """Whether buckets are whole venue-local days."""
        return self.seconds == 86400

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


class Metric(StrEnum):
    """What an aggregation computes per bucket."""

    OHLCV = "ohlcv"
    VWAP = "vwap"
    TWAP = "twap"
    TRADE_COUNT = "trade_count"


#: The metrics an aggregation answers when none are named (the API's and the CLI's default).
DEFAULT_METRICS = (Metric.OHLCV, Metric.VWAP)
