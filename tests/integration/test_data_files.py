"""The data files K2 writes itself describe the same rows as pyiceberg's own writer would:
manifest bounds and counts, Parquet row-group statistics, field ids, row groups and sort order.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from k2.lake.layout import arrange
from k2.lake.tables import ROW_GROUP_ROWS, TRADES
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 23, 0, tzinfo=UTC)
ROWS_PER_SYMBOL_DAY = 9_000


def _rows() -> pa.Table:
    """Two days (the second crossing UTC midnight) x two symbols, more rows per partition than
    one row group holds; some rows lack a sequence, some carry conditions and vendor fields.
    """
    rows = []
    for day in range(2):
        for symbol, base in (("RIO", "80.5"), ("BHP", "36.25")):
            for i in range(ROWS_PER_SYMBOL_DAY):
                rows.append(
                    trade_row(
                        symbol,
                        T0 + timedelta(days=day, seconds=i * 7.3),
                        price=f"{base}{i % 97:02d}",
                        quantity=str(1 + i % 1000),
                        sequence=i + 1,
                        trade_conditions=["XT"] if i % 11 == 0 else [],
                        vendor_data=[("company_id", "7078")] + ([("venue", "CXA")] if i % 5 == 0 else []),
                        source_sequence=None if i % 13 == 0 else i + 1,
                    )
                )
    return make_trade_rows(rows)


def _files(table: Table) -> dict[str, DataFile]:
    return {str(task.file.partition): task.file for task in table.scan().plan_files()}


def _parquet(data_file: DataFile) -> pq.ParquetFile:
    return pq.ParquetFile(data_file.file_path.removeprefix("file://"))


def _row_group_stats(file: pq.ParquetFile) -> list[list[tuple[object, ...]]]:
    metadata = file.metadata
    groups: list[list[tuple[object, ...]]] = []
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        columns: list[tuple[object, ...]] = []
        for c in range(group.num_columns):
            column = group.column(c)
            stats = column.statistics
            assert column.compression == "ZSTD"
            assert stats is not None
            assert stats.has_min_max or stats.num_values == 0  # min and max wherever there are values
            columns.append(
                (
                    column.path_in_schema,
                    stats.min if stats.has_min_max else None,
                    stats.max if stats.has_min_max else None,
                    stats.null_count,
                    stats.num_values,
                    column.num_values,
                )
            )
        groups.append(columns)
    return groups


@pytest.fixture
def written(tmp_path: Path) -> tuple[dict[str, DataFile], dict[str, DataFile]]:
    """The same rows written by K2 and by pyiceberg's ``append``, each into a fresh lake."""
    rows = _rows()
    k2 = EmbeddedLake.create(tmp_path / "k2")
    reference = EmbeddedLake.create(tmp_path / "pyiceberg")
    try:
        result = k2.writer.append(TRADES, rows, {"k2.load.id": "test"})
        assert result.rows_written == rows.num_rows
        # pyiceberg keeps the order it is given: hand it the rows already in K2's order.
        reference_table = reference.writer.table(TRADES)
        reference_table.append(pa.concat_tables(arrange(rows, TRADES)))
        return _files(k2.writer.table(TRADES)), _files(reference_table)
    finally:
        k2.close()
        reference.close()


def test_manifest_bounds_and_counts_match_pyicebergs_writer(
    written: tuple[dict[str, DataFile], dict[str, DataFile]],
) -> None:
    """Partitions, record counts, value, null and NaN counts and lower/upper bounds of every column
    are what pyiceberg records for the same rows; split offsets name every row group.
    """
    ours, theirs = written
    assert ours.keys() == theirs.keys()
    assert len(ours) == 3  # 2024-01-08 (RIO and BHP before midnight), 2024-01-09, 2024-01-10
    for partition, file in ours.items():
        reference = theirs[partition]
        assert file.record_count == reference.record_count
        assert file.partition == reference.partition
        assert file.value_counts == reference.value_counts
        assert file.null_value_counts == reference.null_value_counts
        assert file.nan_value_counts == reference.nan_value_counts
        assert file.lower_bounds == reference.lower_bounds
        assert file.upper_bounds == reference.upper_bounds
        assert file.column_sizes.keys() == reference.column_sizes.keys()
        assert file.file_size_in_bytes == Path(file.file_path.removeprefix("file://")).stat().st_size
        assert file.split_offsets is not None
        assert len(file.split_offsets) == _parquet(file).metadata.num_row_groups


def test_parquet_schema_row_groups_and_statistics_match_pyicebergs_writer(
    written: tuple[dict[str, DataFile], dict[str, DataFile]],
) -> None:
    """The Arrow schema (field ids, docs), Parquet field ids, 16,384-row row groups and every row
    group's min, max and null count are those of pyiceberg's file; only encodings differ.
    """
    ours, theirs = written
    for partition, file in ours.items():
        mine, reference = _parquet(file), _parquet(theirs[partition])
        assert mine.schema_arrow.equals(reference.schema_arrow, check_metadata=True)
        assert mine.schema.equals(reference.schema)
        sizes = [mine.metadata.row_group(g).num_rows for g in range(mine.metadata.num_row_groups)]
        assert sizes == [
            reference.metadata.row_group(g).num_rows for g in range(reference.metadata.num_row_groups)
        ]
        assert all(size == ROW_GROUP_ROWS for size in sizes[:-1])
        assert _row_group_stats(mine) == _row_group_stats(reference)
        assert mine.read().equals(reference.read())


def test_rows_in_each_file_follow_the_sort_order(
    written: tuple[dict[str, DataFile], dict[str, DataFile]],
) -> None:
    """Within a file rows run by symbol, then time, then source sequence (nulls first)."""
    ours, _ = written
    for file in ours.values():
        rows = _parquet(file).read(columns=["symbol", "timestamp", "source_sequence"])
        keys = pa.table(
            {
                "symbol": rows["symbol"],
                "timestamp": rows["timestamp"],
                "sequence": pc.fill_null(rows["source_sequence"], -1),
            }
        )
        order = pc.sort_indices(
            keys, sort_keys=[("symbol", "ascending"), ("timestamp", "ascending"), ("sequence", "ascending")]
        )
        assert order.to_pylist() == list(range(rows.num_rows))
