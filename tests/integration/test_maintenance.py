"""Compaction, expiry and tags on a real embedded lake."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k2.domain.bars import Interval
from k2.lake.errors import MaintenanceError
from k2.lake.maintenance import compact, expire, remove_orphan_files, tag
from k2.lake.tables import TRADES
from k2.query import CURRENT, AsOf, BarQuery, TickQuery, bars, symbols, trades
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)


def _load_in_small_commits(lake: EmbeddedLake, commits: int = 4) -> list[int]:
    ids = []
    for c in range(commits):
        rows = [
            trade_row(sym, T0 + timedelta(days=d, minutes=c * 10 + i), str(10 + i), sequence=c * 100 + i)
            for sym in ("BHP", "RIO")
            for d in range(2)
            for i in range(5)
        ]
        result = lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": f"load-{c}"})
        assert result.snapshot_id is not None
        ids.append(result.snapshot_id)
    return ids


def _everything(lake: EmbeddedLake, as_of: AsOf = CURRENT) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = trades(
        lake.engine, TickQuery(limit=100_000, as_of=as_of)
    ).rows.to_pylist()
    return rows


def test_compaction_leaves_one_file_per_partition_and_no_result_changes(lake: EmbeddedLake) -> None:
    """Small files merge into one per partition in one commit; every query answers the same."""
    _load_in_small_commits(lake)
    before_rows = _everything(lake)
    before_bars = bars(lake.engine, BarQuery(Interval.parse("1h"))).to_pylist()
    table = lake.engine.table(TRADES)
    result = compact(table, TRADES)
    assert (result.partitions_rewritten, result.files_before, result.files_after) == (2, 8, 2)
    assert result.rows_rewritten == len(before_rows) == 80
    assert _everything(lake) == before_rows
    assert bars(lake.engine, BarQuery(Interval.parse("1h"))).to_pylist() == before_bars
    assert symbols(lake.engine) == [("ASX", "BHP"), ("ASX", "RIO")]
    assert len(lake.engine.scan(TRADES).paths) == 2


def test_compaction_keeps_history_readable(lake: EmbeddedLake) -> None:
    """After compaction, time travel to a pre-compaction snapshot still answers as before."""
    ids = _load_in_small_commits(lake)
    as_of_second = _everything(lake, AsOf(snapshot_id=ids[1]))
    compact(lake.engine.table(TRADES), TRADES)
    assert _everything(lake, AsOf(snapshot_id=ids[1])) == as_of_second


def test_compaction_with_nothing_to_do_commits_nothing(lake: EmbeddedLake) -> None:
    """A table of single-file partitions is left alone."""
    _load_in_small_commits(lake, commits=1)
    table = lake.engine.table(TRADES)
    snapshots = len(table.snapshots())
    assert compact(table, TRADES).snapshot_id is None
    assert len(lake.engine.table(TRADES).snapshots()) == snapshots


def test_expiry_never_removes_tagged_or_current_snapshots(lake: EmbeddedLake) -> None:
    """Old snapshots go, but a tagged one and the current one stay readable."""
    ids = _load_in_small_commits(lake)
    table = lake.engine.table(TRADES)
    tag(table, "audit-q1", ids[0])
    result = expire(table, TRADES, older_than=datetime.now(UTC) + timedelta(seconds=1))
    remaining = {s.snapshot_id for s in lake.engine.table(TRADES).snapshots()}
    assert remaining == {ids[0], ids[-1]}
    assert result.snapshots_expired == 2
    assert len(_everything(lake, AsOf(tag="audit-q1"))) == 20
    assert len(_everything(lake)) == 80


def test_tags_must_be_new_and_well_formed(lake: EmbeddedLake) -> None:
    """A tag name is used once, and only with safe characters."""
    _load_in_small_commits(lake, commits=1)
    table = lake.engine.table(TRADES)
    tag(table, "eod-2024-01-08")
    with pytest.raises(MaintenanceError, match="already"):
        tag(table, "eod-2024-01-08")
    with pytest.raises(MaintenanceError, match="invalid"):
        tag(table, "bad name/../x")


def test_orphan_removal_reclaims_files_only_expired_snapshots_used(lake: EmbeddedLake) -> None:
    """After compaction and expiry the replaced small files are deleted; current and tagged
    reads still work, and files younger than the grace period are never touched."""
    ids = _load_in_small_commits(lake)
    table = lake.engine.table(TRADES)
    tag(table, "keep", ids[1])
    compact(table, TRADES)
    expire(lake.engine.table(TRADES), TRADES, older_than=datetime.now(UTC) + timedelta(seconds=1))
    data_dir = Path(lake.engine.table(TRADES).location().removeprefix("file://")) / "data"
    (data_dir / "stray-old.parquet").write_bytes(b"x")
    for path in data_dir.rglob("*.parquet"):  # everything so far was written "long ago"
        os.utime(path, (0, 0))
    stray_new = data_dir / "stray-new.parquet"
    stray_new.write_bytes(b"x")
    grace = datetime.now(UTC) - timedelta(minutes=5)
    result = remove_orphan_files(lake.engine.table(TRADES), TRADES, older_than=grace)
    on_disk = set(data_dir.rglob("*.parquet"))
    files = lake.engine.table(TRADES).inspect.all_data_files()["file_path"].to_pylist()
    referenced = {Path(p.removeprefix("file://")) for p in files}
    # Commits 3 and 4 wrote one file per partition (2 x 2) that only expired snapshots used,
    # plus the old stray file; the tagged snapshot keeps commits 1 and 2 alive.
    assert result.files_removed == 5
    assert on_disk == referenced | {stray_new}
    assert len(_everything(lake)) == 80
    assert len(_everything(lake, AsOf(tag="keep"))) == 40
