"""The 1-minute rollup never changes an answer: bars and summaries read from it equal bars made
from the ticks, after a full build, after incremental refreshes with late rows landing in minutes
it already holds, after a compaction, and for an older snapshot; a rollup behind the trades is
not used until it catches up.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pyiceberg.types import StringType

from k2.domain.bars import Interval
from k2.domain.identity import message_id
from k2.lake.catalog import close_catalog
from k2.lake.maintenance import compact, expire
from k2.lake.rollup import Refresher, refresh
from k2.lake.tables import BARS_1M, TRADES
from k2.query import CURRENT, AsOf, BarQuery, QueryEngine, bars, daily_summary
from k2.settings import QuerySettings
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 23, 0, tzinfo=UTC)  # 10:00 in Sydney
SYMBOLS = ("AAA", "BHP", "RIO")
CHECKS = hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _trades(rng: random.Random, count: int, batch: str, days: int = 2) -> pa.Table:
    rows = []
    for i in range(count):
        symbol, exchange = rng.choice(SYMBOLS), "ASX" if rng.random() < 0.8 else "SYN"
        at = T0 + timedelta(days=rng.randrange(days), seconds=rng.randrange(0, 6 * 3600, 3))
        row = trade_row(
            symbol,
            at,
            Decimal(rng.randrange(1000, 2000)) / 100,
            str(rng.randrange(1, 500)),
            exchange=exchange,
        )
        row["source_sequence"] = None if rng.random() < 0.1 else rng.randrange(1, 40)
        row["trade_id"] = f"{exchange}-{symbol}-{batch}-{i}"
        row["message_id"] = message_id(exchange, "trade", row["trade_id"])
        rows.append(row)
    return make_trade_rows(rows)


def _refresh(lake: EmbeddedLake) -> None:
    refresh(lake.catalog, lake.settings.lake.namespace, lake.settings.lake.target_file_size_bytes)


def _from_ticks(lake: EmbeddedLake, query: BarQuery) -> list[dict[str, Any]]:
    """The bars the ticks give: an engine told not to use the rollup."""
    settings = QuerySettings(rollup=False, cache_bytes=0)
    engine = QueryEngine(lake.catalog, lake.settings.lake.namespace, settings)
    try:
        rows: list[dict[str, Any]] = bars(engine, query).to_pylist()
        return rows
    finally:
        engine.close()


def _uses_rollup(engine: QueryEngine, as_of: AsOf = CURRENT) -> bool:
    trades = engine.table(TRADES)
    snapshot = engine.snapshot_id(trades, as_of)
    return snapshot is not None and engine.rollup_snapshot(trades, snapshot) is not None


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    """Trades in three overlapping commits and a rollup built over them; tests must not write."""
    lake = EmbeddedLake.create(tmp_path_factory.mktemp("rolled") / "lake")
    rng = random.Random(5)
    for batch in range(3):
        lake.writer.append(TRADES, _trades(rng, 2000, f"b{batch}"), {"k2.load.id": f"b{batch}"})
    _refresh(lake)
    yield lake
    lake.close()


minutes = st.integers(0, 2 * 24 * 60).map(lambda m: T0 - timedelta(hours=12) + timedelta(minutes=m))


@st.composite
def minute_queries(draw: st.DrawFn) -> BarQuery:
    """Bars of whole minutes over any symbols, venue and minute-aligned range."""
    start = draw(st.one_of(st.none(), minutes))
    span = draw(st.integers(1, 3 * 24 * 60))
    return BarQuery(
        Interval.parse(draw(st.sampled_from(["1m", "2m", "5m", "15m", "30m", "1h", "2h", "6h", "1d"]))),
        symbols=tuple(draw(st.lists(st.sampled_from(SYMBOLS), max_size=2))),
        exchange=draw(st.sampled_from([None, "ASX", "SYN"])),
        start=start,
        end=start + timedelta(minutes=span) if start else None,
    )


@CHECKS
@given(query=minute_queries())
def test_bars_from_the_rollup_equal_bars_from_the_ticks(rolled: EmbeddedLake, query: BarQuery) -> None:
    """Every interval of whole minutes, any symbols, venue and minute-aligned range."""
    assert _uses_rollup(rolled.engine)
    assert bars(rolled.engine, query).to_pylist() == _from_ticks(rolled, query)


def test_incremental_refreshes_with_late_rows_equal_a_rebuild_and_the_ticks(tmp_path: Path) -> None:
    """Appends that land in minutes the rollup already holds (late rows, ties on time and
    sequence) recompute those minutes; the result equals a rollup built from nothing.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    rebuilt = EmbeddedLake.create(tmp_path / "rebuilt")
    try:
        rng = random.Random(9)
        query = BarQuery(Interval.parse("1m"))
        daily = BarQuery(Interval.parse("1d"))
        for batch in range(4):
            rows = _trades(rng, 700, f"late{batch}")
            lake.writer.append(TRADES, rows, {"k2.load.id": f"l{batch}"})
            rebuilt.writer.append(TRADES, rows, {"k2.load.id": f"l{batch}"})
            _refresh(lake)
            assert _uses_rollup(lake.engine)
            assert bars(lake.engine, query).to_pylist() == _from_ticks(lake, query)
        _refresh(rebuilt)
        assert bars(lake.engine, query).to_pylist() == bars(rebuilt.engine, query).to_pylist()
        assert bars(lake.engine, daily).to_pylist() == _from_ticks(lake, daily)
        minute_files = lake.engine.scan(BARS_1M).files
        assert len(minute_files) == len({(f.day, f.exchange) for f in minute_files})  # one file a partition
    finally:
        lake.close()
        rebuilt.close()


def test_a_rollup_behind_the_trades_is_not_used_until_it_catches_up(tmp_path: Path) -> None:
    """Trades committed after the last refresh are read from the ticks; after a compaction the
    rollup still serves (the rows did not change); an older snapshot reads its own rollup.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    try:
        rng = random.Random(2)
        lake.writer.append(TRADES, _trades(rng, 500, "a"), {"k2.load.id": "a"})
        _refresh(lake)
        first = lake.engine.snapshot_id(lake.engine.table(TRADES), CURRENT)
        before = bars(lake.engine, BarQuery(Interval.parse("1h")))
        lake.writer.append(TRADES, _trades(rng, 500, "b"), {"k2.load.id": "b"})
        assert not _uses_rollup(lake.engine)
        behind = bars(lake.engine, BarQuery(Interval.parse("1h")))
        assert sum(row["trade_count"] for row in behind.to_pylist()) == 1000
        _refresh(lake)
        assert bars(lake.engine, BarQuery(Interval.parse("1h"))).to_pylist() == behind.to_pylist()
        compact(lake.writer.table(TRADES), TRADES)
        assert _uses_rollup(lake.engine)
        assert bars(lake.engine, BarQuery(Interval.parse("1h"))).to_pylist() == behind.to_pylist()
        past = AsOf(snapshot_id=first)
        assert _uses_rollup(lake.engine, past)
        assert bars(lake.engine, BarQuery(Interval.parse("1h"), as_of=past)).to_pylist() == before.to_pylist()
        without = QueryEngine(lake.catalog, lake.settings.lake.namespace, QuerySettings(cache_bytes=0))
        try:
            day = (T0 + timedelta(hours=11)).date()
            assert daily_summary(lake.engine, "BHP", day, "ASX") == daily_summary(without, "BHP", day, "ASX")
        finally:
            without.close()
    finally:
        lake.close()


def test_the_sinks_refresher_rides_out_a_catalog_outage(tmp_path: Path) -> None:
    """A refresh that finds the catalog down is left to the next request (it once killed the
    refresher's thread, and no refresh ran again): once the catalog is back the rollup catches up.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    catalog_file = tmp_path / "lake" / "catalog.db"
    refresher = Refresher(lake.writer)
    try:
        lake.writer.append(TRADES, _trades(random.Random(4), 400, "a"), {"k2.load.id": "a"})
        close_catalog(lake.catalog)  # no pooled connection to the file outlives its move
        catalog_file.rename(tmp_path / "away.db")
        catalog_file.mkdir()  # SQLite cannot open a directory: the catalog is down
        refresher.request()
        refresher.close()
        catalog_file.rmdir()
        (tmp_path / "away.db").rename(catalog_file)
        assert not _uses_rollup(lake.engine)
        refresher.request()
        refresher.close()
        assert _uses_rollup(lake.engine)
        query = BarQuery(Interval.parse("1m"))
        assert bars(lake.engine, query).to_pylist() == _from_ticks(lake, query)
    finally:
        refresher.close()
        lake.close()


def test_the_rollup_follows_an_expiry_and_a_schema_change(tmp_path: Path) -> None:
    """An expiry that drops the snapshot the rollup reflected makes the next refresh rebuild; a
    column added to trades changes nothing in the bars.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    hourly = BarQuery(Interval.parse("1h"))
    try:
        rng = random.Random(4)
        lake.writer.append(TRADES, _trades(rng, 400, "a"), {"k2.load.id": "a"})
        _refresh(lake)
        lake.writer.append(TRADES, _trades(rng, 400, "b"), {"k2.load.id": "b"})
        expire(lake.writer.table(TRADES), TRADES, older_than=datetime.now(UTC) + timedelta(seconds=1))
        namespace, target = lake.settings.lake.namespace, lake.settings.lake.target_file_size_bytes
        assert refresh(lake.catalog, namespace, target).rebuilt
        assert _uses_rollup(lake.engine)
        assert bars(lake.engine, hourly).to_pylist() == _from_ticks(lake, hourly)
        with lake.writer.table(TRADES).update_schema() as update:
            update.add_column("venue_note", StringType())
        lake.writer.append(TRADES, _trades(rng, 400, "c"), {"k2.load.id": "c"})
        _refresh(lake)
        assert _uses_rollup(lake.engine)
        assert bars(lake.engine, hourly).to_pylist() == _from_ticks(lake, hourly)
        assert sum(row["trade_count"] for row in bars(lake.engine, hourly).to_pylist()) == 1200
    finally:
        lake.close()
