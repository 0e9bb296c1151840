"""The sink's Kafka offsets and the symbols per exchange are found in the table's history whoever
committed after K2: walking back past commits that carry none (loads, another engine's
compaction), and into the earlier metadata files when expiry removed the snapshots that carried
them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from k2.lake.tables import TRADES
from k2.lake.writer import SYMBOLS_PROPERTY, symbols_of
from k2.query import symbols
from k2.stream.checkpoint import OFFSETS_PROPERTY, committed_offsets, encode
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

SINK = {"k2.trades": {0: 40, 1: 12}}


def _commit(lake: EmbeddedLake, hour: int, properties: dict[str, str]) -> int:
    """Append one trade at ``hour`` with ``properties`` in the snapshot summary; its snapshot id."""
    row = trade_row("BHP", datetime(2014, 3, 10, hour, tzinfo=UTC), "10", "1", sequence=hour)
    result = lake.writer.append(TRADES, make_trade_rows([row]), properties)
    assert result.snapshot_id is not None
    return result.snapshot_id


def test_offsets_are_found_behind_commits_that_carry_none(lake: EmbeddedLake) -> None:
    """A load after the sink's commit leaves the sink's offsets where they were."""
    _commit(lake, 1, {OFFSETS_PROPERTY: encode(SINK)})
    _commit(lake, 2, {"k2.load.id": "a-direct-load"})
    assert committed_offsets(lake.engine.table(TRADES)) == SINK


def test_offsets_survive_the_expiry_of_the_snapshots_that_carried_them(lake: EmbeddedLake) -> None:
    """With every snapshot the sink wrote expired, the offsets come from the earlier metadata."""
    sink_snapshots = [_commit(lake, hour, {OFFSETS_PROPERTY: encode(SINK)}) for hour in (1, 2)]
    _commit(lake, 3, {"k2.load.id": "another-engine"})
    table = lake.engine.table(TRADES)
    table.maintenance.expire_snapshots().by_ids(sink_snapshots).commit()
    table = lake.engine.table(TRADES)
    assert all(
        OFFSETS_PROPERTY not in (s.summary.additional_properties if s.summary else {})
        for s in table.snapshots()
    )
    assert committed_offsets(table) == SINK


def test_a_later_sink_commit_wins_over_expired_history(lake: EmbeddedLake) -> None:
    """After expiry, the sink's next commit is the position: found in the current history."""
    first = _commit(lake, 1, {OFFSETS_PROPERTY: encode(SINK)})
    _commit(lake, 2, {"k2.load.id": "another-engine"})
    lake.engine.table(TRADES).maintenance.expire_snapshots().by_id(first).commit()
    later = {"k2.trades": {0: 90, 1: 12}}
    _commit(lake, 3, {OFFSETS_PROPERTY: encode(later)})
    assert committed_offsets(lake.engine.table(TRADES)) == later


def test_a_table_no_sink_wrote_has_no_offsets(lake: EmbeddedLake) -> None:
    """Loads alone record no Kafka position."""
    _commit(lake, 1, {"k2.load.id": "a-direct-load"})
    _commit(lake, 2, {"k2.load.id": "another-load"})
    assert committed_offsets(lake.engine.table(TRADES)) == {}


def test_symbols_survive_another_engines_rewrite_and_expiry(lake: EmbeddedLake) -> None:
    """Another engine rewrites the table (its commits carry no ``k2.symbols``) and expires every
    snapshot K2 wrote: the symbols come from the earlier metadata, for the current snapshot and
    for /v1/symbols (they were lost once, after Trino's optimize and expire_snapshots)."""
    _commit(lake, 1, {"k2.load.id": "a-load"})
    table = lake.engine.table(TRADES)
    written = [s.snapshot_id for s in table.snapshots()]
    table.overwrite(table.scan().to_arrow())  # pyiceberg as another engine: no k2.* entries
    table = lake.engine.table(TRADES)
    table.maintenance.expire_snapshots().by_ids(written).commit()
    table = lake.engine.table(TRADES)
    assert all(
        SYMBOLS_PROPERTY not in (s.summary.additional_properties if s.summary else {})
        for s in table.snapshots()
    )
    assert symbols_of(table) == {"ASX": ["BHP"]}
    assert symbols(lake.engine) == [("ASX", "BHP")]
