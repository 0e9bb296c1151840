import itertools
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from k2.lake.layout import arrange
from k2.lake.tables import TRADES
from k2.testing import make_trade_rows, trade_row

T0 = datetime(2024, 1, 8, tzinfo=UTC)

row = st.tuples(
    st.sampled_from(["BHP", "RIO", "CBA"]),
    st.sampled_from(["ASX", "SYN"]),
    st.integers(min_value=0, max_value=3 * 86_400),
    st.integers(min_value=1, max_value=5),
)


def _table(rows: list[tuple[str, str, int, int]]) -> pa.Table:
    return make_trade_rows(
        [
            trade_row(sym, T0 + timedelta(seconds=sec), sequence=seq, exchange=ex, message_id=f"{i}")
            for i, (sym, ex, sec, seq) in enumerate(rows)
        ]
    )


def _key(r: dict[str, object]) -> tuple[object, ...]:
    ts = r["timestamp"]
    assert isinstance(ts, datetime)
    return (ts.date(), r["exchange"], r["symbol"], ts, r["source_sequence"])


@given(st.lists(row, min_size=1, max_size=80), st.booleans())
def test_arrange_gives_sorted_single_partition_slices_with_every_row(
    rows: list[tuple[str, str, int, int]], presorted: bool
) -> None:
    """Whatever the input order, each slice is one (day, exchange) partition sorted by symbol,
    time and sequence, and together the slices hold exactly the input rows."""
    table = _table(
        sorted(rows, key=lambda r: (r[2] // 86_400, r[1], r[0], r[2], r[3])) if presorted else rows
    )
    slices = arrange(table, TRADES)
    seen: list[str] = []
    partitions = set()
    for part in slices:
        records = part.to_pylist()
        keys = [_key(r) for r in records]
        assert keys == sorted(keys)
        assert len({k[:2] for k in keys}) == 1
        partitions.add(keys[0][:2])
        seen += [str(r["message_id"]) for r in records]
    assert len(partitions) == len(slices)
    assert sorted(seen) == sorted(str(i) for i in range(len(rows)))


def test_already_sorted_runs_are_concatenated_without_copying() -> None:
    """Per-symbol runs in time order (one file per symbol) are reused as they are."""
    runs = [_table([(sym, "ASX", s, 1) for s in range(0, 600, 60)]) for sym in ("RIO", "BHP")]
    table = pa.concat_tables(runs)
    (part,) = arrange(table, TRADES)
    assert part["symbol"].to_pylist() == ["BHP"] * 10 + ["RIO"] * 10
    assert part["symbol"].num_chunks == 2


@given(st.lists(row, min_size=1, max_size=80), st.lists(st.integers(0, 80), max_size=6))
def test_arrange_handles_rows_in_many_chunks(rows: list[tuple[str, str, int, int]], cuts: list[int]) -> None:
    """Rows that arrive in several batches (one chunk each, in any order) arrange as if whole."""
    table = _table(rows)
    bounds = sorted({0, len(rows), *(c for c in cuts if c < len(rows))})
    chunked = pa.concat_tables([table.slice(a, b - a) for a, b in itertools.pairwise(bounds)])
    expected = [part.to_pylist() for part in arrange(table, TRADES)]
    assert [part.to_pylist() for part in arrange(chunked, TRADES)] == expected
