"""What the latency series ask for: a symbol's trading day, or one whole session hour of it,
drawn without replacement so that a series' requests are distinct as far as the picks allow.

A request the API answered before (same snapshot, same parameters) comes back from its answer
cache; drawing every pick once before any comes again keeps such hits out of a series until its
picks run out, and :class:`Draw` counts the draws that repeat one.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar

from k2.domain.venues import Venue

T = TypeVar("T")
# One symbol's trades in [start, end): what a one-hour request names.
HourPick = tuple[str, datetime, datetime]


@dataclass(frozen=True, slots=True)
class SymbolDay:
    """A symbol's venue-local trading day, its UTC bounds and its trade count."""

    symbol: str
    day: date
    start: datetime
    end: datetime
    trades: int


def session_hours(day: date, v: Venue) -> list[datetime]:
    """The UTC starts of the whole venue-local hours of ``day``'s trading session."""
    return [
        datetime.combine(day, time(hour), tzinfo=v.zone).astimezone(UTC)
        for hour in range(v.session_open.hour, v.session_close.hour)
    ]


def hours(days: Sequence[SymbolDay], v: Venue) -> list[HourPick]:
    """Every (symbol, session hour) of ``days``: symbols x days x hours."""
    return [(d.symbol, start, start + timedelta(hours=1)) for d in days for start in session_hours(d.day, v)]


def minute_windows(days: Sequence[SymbolDay], v: Venue) -> list[HourPick]:
    """Every (symbol, one-hour window of the session starting on a whole minute) of ``days``:
    symbols x days x (session minutes - 59), so that thousands of distinct requests exist.
    """
    picks = []
    for d in days:
        first = session_hours(d.day, v)[0]
        for minute in range((v.session_close.hour - v.session_open.hour - 1) * 60 + 1):
            start = first + timedelta(minutes=minute)
            picks.append((d.symbol, start, start + timedelta(hours=1)))
    return picks


class Draw(Generic[T]):
    """Picks from ``space`` in a seeded random order, each once; when all have been drawn a new
    shuffled pass begins, and its draws count as repeats. Safe across threads.
    """

    def __init__(self, space: Sequence[T], seed: int) -> None:
        if not space:
            raise ValueError("nothing to draw from")
        self.space = list(space)
        self._rng = random.Random(seed)
        self._left: list[T] = []
        self._passes = 0
        self._lock = threading.Lock()
        self.drawn = 0
        self.repeats = 0

    def __call__(self) -> T:
        with self._lock:
            if not self._left:
                self._left = self._rng.sample(self.space, len(self.space))
                self._passes += 1
            self.drawn += 1
            self.repeats += self._passes > 1
            return self._left.pop()

    def take(self, count: int) -> list[T]:
        """The next ``count`` draws."""
        return [self() for _ in range(count)]


def distinct_runs(runs: int, warmup: int, space: int, least: int) -> int:
    """Measured runs of a series: ``runs``, but no more than the picks left after the warm-up
    (at least ``least``, repeating picks when the space is smaller).
    """
    return max(least, min(runs, space - warmup))
