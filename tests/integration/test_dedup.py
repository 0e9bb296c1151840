"""Appends skip the rows whose ``message_id`` is already stored, whatever else the batch holds."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from k2.lake.tables import TRADES
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)


def _rows(symbols: tuple[str, ...], first: int, count: int) -> pa.Table:
    return make_trade_rows(
        [
            trade_row(symbol, T0 + timedelta(days=day, seconds=i), sequence=i)
            for symbol in symbols
            for day in range(2)
            for i in range(first, first + count)
        ]
    )


def _stored_ids(lake: EmbeddedLake) -> list[str]:
    table = lake.writer.table(TRADES)
    paths = [task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()]
    return [
        i for path in paths for i in pq.read_table(path, columns=["message_id"])["message_id"].to_pylist()
    ]


def test_rows_already_stored_are_skipped_beside_new_ones(lake: EmbeddedLake) -> None:
    """A batch mixing stored rows and new ones (a symbol inside the stored files' bounds, later
    sequences of stored symbols) writes exactly the new ones.
    """
    first = _rows(("BHP", "RIO"), 1, 50)
    assert lake.writer.append(TRADES, first, {}, assume_unique=True).rows_written == 100 * 2
    again = first.slice(0, 60)
    new = pa.concat_tables([_rows(("CBA",), 1, 30), _rows(("BHP",), 51, 10)])
    result = lake.writer.append(TRADES, pa.concat_tables([again, new]), {}, assume_unique=True)
    assert (result.rows_written, result.duplicates_skipped) == (new.num_rows, 60)
    stored = _stored_ids(lake)
    assert len(stored) == len(set(stored)) == first.num_rows + new.num_rows
    assert set(stored) == set(first["message_id"].to_pylist()) | set(new["message_id"].to_pylist())


def test_a_batch_repeating_its_own_rows_keeps_the_first(lake: EmbeddedLake) -> None:
    """Without the promise of unique ids, repeats inside the batch are dropped too."""
    rows = _rows(("BHP",), 1, 20)
    repeated = pa.concat_tables([rows, rows.slice(5, 10)])
    result = lake.writer.append(TRADES, repeated, {})
    assert (result.rows_written, result.duplicates_skipped) == (rows.num_rows, 10)
    assert pc.count_distinct(pa.array(_stored_ids(lake))).as_py() == rows.num_rows
    assert lake.writer.append(TRADES, rows, {}).rows_written == 0
