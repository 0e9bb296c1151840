"""Per-symbol sequence checks of the sink."""

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from k2.lake.tables import TRADES
from k2.obs.metrics import K2Metrics
from k2.stream.sequences import SequenceTracker
from k2.testing import make_trade_rows, trade_row

# 23:30 UTC is 10:30 the next day in Sydney: one ASX session crosses midnight UTC.
SESSION = datetime(2024, 1, 8, 23, 30, tzinfo=UTC)


def _kinds(tracker: SequenceTracker) -> list[tuple[str, str, int, int]]:
    return [(e.symbol, e.kind, e.expected, e.seen) for e in tracker.recent]


def _rows(symbol: str, sequences: list[int], start: datetime = SESSION) -> list[dict[str, object]]:
    return [trade_row(symbol, start + timedelta(minutes=i), sequence=s) for i, s in enumerate(sequences)]


def test_gaps_duplicates_late_rows_and_resets_are_told_apart() -> None:
    """Each anomaly is named with the number expected and the one seen; in-order rows are silent."""
    tracker = SequenceTracker(K2Metrics(CollectorRegistry()))
    tracker.observe(TRADES, make_trade_rows(_rows("BHP", [1, 2, 5, 3, 6, 6])))
    tracker.observe(TRADES, make_trade_rows(_rows("BHP", [1, 2], SESSION + timedelta(days=1))))
    assert _kinds(tracker) == [
        ("BHP", "gap", 3, 5),
        ("BHP", "out_of_order", 6, 3),
        ("BHP", "duplicate", 7, 6),
        ("BHP", "reset", 7, 1),
    ]


def test_a_session_across_midnight_utc_is_one_day_and_symbols_are_apart() -> None:
    """Rows on both sides of midnight UTC in one Sydney session, two symbols interleaved: no anomaly."""
    tracker = SequenceTracker(K2Metrics(CollectorRegistry()))
    rows = []
    for i in range(1, 200):
        at = SESSION + timedelta(minutes=i)  # runs from 23:31 UTC into the next UTC day
        rows += [trade_row("BHP", at, sequence=i), trade_row("RIO", at, sequence=i)]
    tracker.observe(TRADES, make_trade_rows(rows))
    assert _kinds(tracker) == []
