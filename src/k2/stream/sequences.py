"""Per-symbol sequence checks on the rows the sink consumes: gaps, duplicates, out-of-order
arrivals and session resets, counted in metrics. Late rows are still written; this only reports.

A venue numbers each symbol's events within a session (``source_sequence``: the ASX row order
of a symbol's day, Binance's trade id). A number lower than the last one seen on a later day is
a session reset; on the same day it is an out-of-order (late) arrival.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa

from k2.lake.tables import TableSpec
from k2.obs.metrics import K2Metrics

#: Most recent anomalies kept for listing.
RECENT_EVENTS = 1000


@dataclass(frozen=True, slots=True)
class SequenceEvent:
    """One anomaly: ``kind`` is gap, duplicate, out_of_order or reset."""

    table: str
    exchange: str
    symbol: str
    kind: str
    expected: int
    seen: int
    timestamp: datetime


class SequenceTracker:
    """Remembers the last sequence number per table, exchange and symbol."""

    def __init__(self, metrics: K2Metrics) -> None:
        self._metrics = metrics
        self._last: dict[tuple[str, str, str], tuple[date, int]] = {}
        self.recent: deque[SequenceEvent] = deque(maxlen=RECENT_EVENTS)

    def observe(self, spec: TableSpec, rows: pa.Table) -> None:
        """Check ``rows`` (in arrival order) against what came before."""
        names = ["exchange", "symbol", "source_sequence", "timestamp"]
        columns = rows.select(names).to_pydict()
        for exchange, symbol, sequence, timestamp in zip(*(columns[n] for n in names), strict=True):
            if sequence is None:
                continue
            key = (spec.name, exchange, symbol)
            day = timestamp.date()
            previous = self._last.get(key)
            same_day = previous is not None and previous[0] == day
            self._last[key] = (day, max(sequence, previous[1]) if previous and same_day else sequence)
            if previous is None:
                continue
            kind = _anomaly(previous[1], sequence, same_day=same_day, later_day=day > previous[0])
            if kind is not None:
                self._metrics.sequence_events.labels(exchange, kind).inc()
                self.recent.append(
                    SequenceEvent(spec.name, exchange, symbol, kind, previous[1] + 1, sequence, timestamp)
                )


def _anomaly(last: int, sequence: int, *, same_day: bool, later_day: bool) -> str | None:
    """What ``sequence`` after ``last`` is, or None when it is the next number (or a new session's)."""
    if later_day and sequence <= last:
        return "reset"
    if sequence == last:
        return "duplicate"
    if sequence < last:
        return "out_of_order"
    if sequence > last + 1 and same_day:
        return "gap"
    return None
