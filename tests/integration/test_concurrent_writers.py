"""Two writers committing to one table at once (two sinks of one consumer group, a sink and a
loader, a sink and its compaction): the commit that loses the race is built again from the table
the winner left, so neither writer's rows, Kafka offsets or symbols are lost, nothing is written
twice, and no data file is left behind unreferenced.

The race is made deterministic: the rival commits exactly while the first writer builds its
commit's summary, after it read the table and before it commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.table import Table

from k2.lake.errors import LakeCommitConflictError
from k2.lake.maintenance import compact
from k2.lake.tables import TRADES
from k2.lake.writer import LakeWriter, symbols_of
from k2.stream.checkpoint import Offsets, committed_offsets, sink_summary
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)
TOPIC = "k2.equities.trades.asx"


def _rows(symbol: str, count: int, first: int = 0) -> pa.Table:
    return make_trade_rows(
        [trade_row(symbol, T0 + timedelta(seconds=i), sequence=i) for i in range(first, first + count)]
    )


def _rival(lake: EmbeddedLake) -> LakeWriter:
    """A second writer on the same catalog: another sink process, as far as the table can tell."""
    writer = lake.writer
    return LakeWriter(writer.catalog, writer.namespace, writer.target_file_size_bytes)


class _Racing:
    """A sink's summary that lets ``rival`` commit its rows and offsets the first time it is made,
    so the commit built on it loses the race; it counts how often it was made.
    """

    def __init__(self, rival: LakeWriter, rows: pa.Table, offsets: Offsets, consumed: Offsets) -> None:
        self._rival, self._rows, self._offsets, self._consumed = rival, rows, offsets, consumed
        self.made = 0

    def __call__(self, table: Table) -> Mapping[str, str]:
        self.made += 1
        if self.made == 1:
            self._rival.append(TRADES, self._rows, lambda head: sink_summary(self._offsets, head))
        return sink_summary(self._consumed, table)


def _message_ids(lake: EmbeddedLake) -> list[str]:
    ids = lake.writer.table(TRADES).scan(selected_fields=("message_id",)).to_arrow()["message_id"]
    return [str(i) for i in ids.to_pylist()]


def _unreferenced_files(lake: EmbeddedLake) -> set[str]:
    """Parquet data files in the warehouse that no snapshot of the table refers to."""
    table = lake.writer.table(TRADES)
    referenced = {
        entry.data_file.file_path.removeprefix("file://")
        for snapshot in table.snapshots()
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False)
    }
    location = Path(table.location().removeprefix("file://")) / "data"
    return {str(path) for path in location.rglob("*.parquet")} - referenced


def test_a_sink_commit_that_loses_a_race_keeps_the_other_sinks_offsets(lake: EmbeddedLake) -> None:
    """Sink A builds its commit for partition 0 while sink B commits partition 1: A's commit is
    made again on B's snapshot and records both partitions; every row is stored once.
    """
    lake.writer.append(TRADES, _rows("AAA", 5), lambda head: sink_summary({TOPIC: {0: 5}}, head))
    racing = _Racing(_rival(lake), _rows("BBB", 7), {TOPIC: {1: 7}}, {TOPIC: {0: 15}})

    result = lake.writer.append(TRADES, _rows("AAA", 10, first=5), racing, commit_when_empty=True)

    table = lake.writer.table(TRADES)
    assert racing.made == 2, "the lost commit was not built again"
    assert result.rows_written == 10
    assert committed_offsets(table) == {TOPIC: {0: 15, 1: 7}}
    assert symbols_of(table) == {"ASX": ["AAA", "BBB"]}
    ids = _message_ids(lake)
    assert len(ids) == 22 == pc.count_distinct(pa.array(ids)).as_py()
    assert _unreferenced_files(lake) == set(), "the lost attempt's data files were left behind"


def test_a_lost_commit_whose_rows_the_winner_stored_writes_only_its_offsets(lake: EmbeddedLake) -> None:
    """After a rebalance both sinks hold the same rows; the winner stores them, the loser's retry
    finds them stored, writes no row and still records its offsets; its files are deleted.
    """
    rows = _rows("AAA", 8)
    racing = _Racing(_rival(lake), rows, {TOPIC: {0: 8}}, {TOPIC: {0: 8, 2: 3}})

    result = lake.writer.append(TRADES, rows, racing, commit_when_empty=True)

    assert (racing.made, result.rows_written, result.duplicates_skipped) == (2, 0, 8)
    assert committed_offsets(lake.writer.table(TRADES)) == {TOPIC: {0: 8, 2: 3}}
    assert sorted(_message_ids(lake)) == sorted(rows["message_id"].to_pylist())
    assert _unreferenced_files(lake) == set()


def test_a_compaction_that_loses_a_race_changes_nothing(lake: EmbeddedLake) -> None:
    """A compaction built on a snapshot another writer moved past is refused whole: the winner's
    rows stay, no file it wrote is left behind, and the next compaction takes everything.
    """
    for first in range(0, 30, 10):
        lake.writer.append(TRADES, _rows("AAA", 10, first=first), {"k2.source": "test"})
    stale = lake.writer.table(TRADES)
    _rival(lake).append(TRADES, _rows("AAA", 10, first=30), {"k2.source": "test"})

    with pytest.raises(LakeCommitConflictError):
        compact(stale, TRADES)

    assert len(_message_ids(lake)) == 40
    assert _unreferenced_files(lake) == set()
    after = compact(lake.writer.table(TRADES), TRADES)
    assert (after.files_before, after.files_after, after.rows_rewritten) == (4, 1, 40)
    assert sorted(_message_ids(lake)) == sorted(_rows("AAA", 40)["message_id"].to_pylist())
    assert symbols_of(lake.writer.table(TRADES)) == {"ASX": ["AAA"]}
