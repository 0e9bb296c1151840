"""Trades and quotes reads: filters, stable pages and time travel, on a real embedded lake."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from k2.lake.errors import SnapshotNotFoundError, TableNotFoundError
from k2.lake.maintenance import tag
from k2.lake.tables import TRADES
from k2.query import AsOf, TickQuery, trades
from k2.query.errors import InvalidCursorError, InvalidQueryError
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)


def _append(lake: EmbeddedLake, rows: list[dict[str, object]]) -> int:
    result = lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "test"})
    assert result.snapshot_id is not None
    return result.snapshot_id


def _seed(lake: EmbeddedLake) -> int:
    rows = [trade_row("BHP", T0 + timedelta(minutes=i), str(10 + i), sequence=i + 1) for i in range(10)]
    rows += [trade_row("RIO", T0 + timedelta(minutes=i), "60", sequence=i + 1) for i in range(5)]
    return _append(lake, rows)


def test_reading_before_any_load_is_a_clear_error(lake: EmbeddedLake) -> None:
    """With nothing loaded, a read names the missing table rather than returning nonsense."""
    with pytest.raises(TableNotFoundError, match="load data first"):
        trades(lake.engine, TickQuery())


def test_filters_by_symbol_and_half_open_time_range(lake: EmbeddedLake) -> None:
    """start is inclusive, end exclusive, symbols are case-insensitive."""
    _seed(lake)
    page = trades(
        lake.engine,
        TickQuery(symbols=("bhp",), start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=5)),
    )
    assert page.rows["price"].to_pylist() == [Decimal(12), Decimal(13), Decimal(14)]
    assert set(page.rows["symbol"].to_pylist()) == {"BHP"}


def test_descending_returns_newest_first(lake: EmbeddedLake) -> None:
    """desc orders by time from the newest."""
    _seed(lake)
    page = trades(lake.engine, TickQuery(symbols=("BHP",), limit=2, descending=True))
    assert page.rows["price"].to_pylist() == [Decimal(19), Decimal(18)]


def test_pages_cover_everything_once_and_ignore_later_loads(lake: EmbeddedLake) -> None:
    """Following cursors returns each row exactly once, pinned to the first page's snapshot,
    even when new rows land between pages."""
    first_snapshot = _seed(lake)
    seen: list[str] = []
    page = trades(lake.engine, TickQuery(symbols=("BHP",), limit=3))
    seen += page.rows["message_id"].to_pylist()
    _append(lake, [trade_row("BHP", T0 + timedelta(seconds=30), "99", sequence=100)])
    while page.next_cursor:
        page = trades(lake.engine, TickQuery(symbols=("BHP",), limit=3, cursor=page.next_cursor))
        assert page.snapshot_id == first_snapshot
        seen += page.rows["message_id"].to_pylist()
    assert len(seen) == len(set(seen)) == 10


def test_same_timestamp_rows_are_split_across_pages_without_loss(lake: EmbeddedLake) -> None:
    """Rows sharing a timestamp are ordered by sequence, so a page boundary inside them is exact."""
    _append(lake, [trade_row("BHP", T0, "10", sequence=i) for i in range(1, 8)])
    sequences: list[int] = []
    cursor = None
    while True:
        page = trades(lake.engine, TickQuery(limit=2, cursor=cursor))
        sequences += page.rows["source_sequence"].to_pylist()
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sequences == list(range(1, 8))


def test_cursor_with_other_filters_is_rejected(lake: EmbeddedLake) -> None:
    """A cursor only continues the query that issued it."""
    _seed(lake)
    page = trades(lake.engine, TickQuery(symbols=("BHP",), limit=2))
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursorError, match="other filters"):
        trades(lake.engine, TickQuery(symbols=("RIO",), limit=2, cursor=page.next_cursor))
    with pytest.raises(InvalidCursorError, match="malformed"):
        trades(lake.engine, TickQuery(symbols=("BHP",), cursor="not-a-cursor"))


def test_time_travel_by_snapshot_tag_and_time(lake: EmbeddedLake) -> None:
    """An audit reads the table as it was: by snapshot id, by tag, or by wall-clock time."""
    first = _seed(lake)
    table = lake.engine.table(TRADES)
    tag(table, "eod-2024-01-08")
    committed = datetime.now(UTC)
    _append(lake, [trade_row("BHP", T0 + timedelta(hours=1), "50", sequence=50)])
    query = TickQuery(symbols=("BHP",), limit=100)
    assert trades(lake.engine, query).rows.num_rows == 11
    for as_of in (AsOf(snapshot_id=first), AsOf(tag="eod-2024-01-08"), AsOf(time=committed)):
        page = trades(lake.engine, TickQuery(symbols=("BHP",), limit=100, as_of=as_of))
        assert (page.rows.num_rows, page.snapshot_id) == (10, first)


def test_unknown_points_in_history_are_not_found(lake: EmbeddedLake) -> None:
    """Unknown snapshot ids and tags, and times before the first commit, are clear errors."""
    _seed(lake)
    for as_of in (AsOf(snapshot_id=1), AsOf(tag="nope"), AsOf(time=datetime(2000, 1, 1, tzinfo=UTC))):
        with pytest.raises(SnapshotNotFoundError):
            trades(lake.engine, TickQuery(as_of=as_of))


def test_limits_and_ranges_are_validated() -> None:
    """Contradictory or naive inputs fail before touching the lake."""
    with pytest.raises(InvalidQueryError):
        TickQuery(limit=0)
    with pytest.raises(InvalidQueryError):
        TickQuery(start=T0, end=T0)
    with pytest.raises(InvalidQueryError):
        TickQuery(start=datetime(2024, 1, 1))
    with pytest.raises(InvalidQueryError):
        AsOf(snapshot_id=1, tag="x")


def test_limit_above_the_maximum_is_refused(lake: EmbeddedLake) -> None:
    """A limit beyond the engine's maximum is an input error, not a memory blow-up."""
    _seed(lake)
    with pytest.raises(InvalidQueryError, match="at most"):
        trades(lake.engine, TickQuery(limit=lake.settings.query.max_limit + 1))


def test_injection_attempts_are_plain_values(lake: EmbeddedLake) -> None:
    """Hostile strings in filters are bound as values and simply match nothing."""
    _seed(lake)
    for hostile in ("BHP' OR '1'='1", "BHP; DROP TABLE trades; --", "') UNION SELECT 1 --"):
        assert trades(lake.engine, TickQuery(symbols=(hostile,))).rows.num_rows == 0
        assert trades(lake.engine, TickQuery(exchange=hostile)).rows.num_rows == 0
