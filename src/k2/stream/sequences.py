"""Per-symbol sequence checks on the rows the sink consumes: gaps, duplicates, out-of-order
arrivals and session resets, counted in metrics. Late rows are still written; this only reports.

A venue numbers each symbol's events within a session (``source_sequence``: the ASX row order
of a symbol's day, Binance's trade id). A number lower than the last one seen on a later day is
a session reset; on the same day it is an out-of-order (late) arrival.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from k2.domain.venues import VENUES
from k2.lake.tables import TableSpec
from k2.obs.metrics import K2Metrics

_MICROS_PER_DAY = 86_400_000_000
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
        # (table, exchange, symbol) -> (UTC day number, highest sequence seen that day)
        self._last: dict[tuple[str, str, str], tuple[int, int]] = {}
        self.recent: deque[SequenceEvent] = deque(maxlen=RECENT_EVENTS)

    def expect(self, exchange: str) -> None:
        """Create ``exchange``'s anomaly counters at zero, so a rate over them reads 0 until the first."""
        for kind in ANOMALIES:
            self._metrics.sequence_events.labels(exchange, kind)
        self._metrics.sequence_gaps.labels(exchange)

    def observe(self, spec: TableSpec, rows: pa.Table) -> None:
        """Check ``rows`` (in arrival order) against what came before.

        The loop runs on plain integers (symbols by dictionary index, days as numbers); Python
        objects are made only for the rare anomaly.
        """
        rows = rows.filter(pc.is_valid(rows["source_sequence"]))
        if rows.num_rows == 0:
            return
        keys = pc.binary_join_element_wise(rows["exchange"], rows["symbol"], "\x1f").combine_chunks()
        encoded = pc.dictionary_encode(keys)
        names = [tuple(k.split("\x1f", 1)) for k in encoded.dictionary.to_pylist()]
        days = _venue_days(rows)
        for row, (index, sequence) in enumerate(
            zip(encoded.indices.to_pylist(), rows["source_sequence"].to_pylist(), strict=True)
        ):
            exchange, symbol = names[index]
            day = days[exchange][row]
            key = (spec.name, exchange, symbol)
            previous = self._last.get(key)
            same_day = previous is not None and previous[0] == day
            self._last[key] = (day, max(sequence, previous[1]) if previous and same_day else sequence)
            if previous is None:
                continue
            kind = _anomaly(previous[1], sequence, same_day=same_day, later_day=day > previous[0])
            if kind is not None:
                self._metrics.sequence_events.labels(exchange, kind).inc()
                if kind == "gap":
                    self._metrics.sequence_gaps.labels(exchange).inc()
                at = rows["timestamp"][row].as_py()
                self.recent.append(
                    SequenceEvent(spec.name, exchange, symbol, kind, previous[1] + 1, sequence, at)
                )


def _venue_days(rows: pa.Table) -> dict[str, list[int]]:
    """Per exchange in ``rows``, every row's venue-local day number (a Sydney session crosses
    midnight UTC, so UTC days would split it).
    """
    days = {}
    for exchange in pc.unique(rows["exchange"]).to_pylist():
        venue = VENUES.get(exchange)
        zone = venue.timezone if venue is not None else "UTC"
        local = pc.local_timestamp(rows["timestamp"].cast(pa.timestamp("us", tz=zone)))
        days[exchange] = pc.divide(local.cast(pa.int64()), _MICROS_PER_DAY).to_pylist()
    return days


#: What :func:`_anomaly` can find.
ANOMALIES = ("gap", "duplicate", "out_of_order", "reset")


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
