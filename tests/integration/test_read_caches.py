"""The read path's caches never change an answer: pages, bars and the as-of join read through
decoded row groups, cached table metadata and snapshot file lists equal a plain DuckDB reading of
the files pyiceberg plans, on a lake built to be awkward (several overlapping commits, rows tied
on time and sequence, null sequences, a file written out of order, two venues, several days),
and stay equal after a new commit, a compaction, an expiry and a schema change.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pyiceberg.types import StringType

from k2.domain.bars import Interval
from k2.domain.identity import message_id
from k2.lake.maintenance import compact, expire, remove_orphan_files, tag
from k2.lake.scan import data_paths
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.query import CURRENT, AsOf, BarQuery, QueryEngine, TickQuery, bars, quotes, trades
from k2.query.enrich import with_prevailing_quotes
from k2.query.preload import preload
from k2.schemas.market import QUOTE
from k2.settings import QuerySettings
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

T0 = datetime(2024, 1, 8, 23, 0, tzinfo=UTC)  # 10:00 in Sydney
SYMBOLS = ("AAA", "BHP", "RIO", "ZZZ")
ORDER = "ORDER BY timestamp, coalesce(source_sequence, -1), message_id"
CHECKS = hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _trades(rng: random.Random, count: int, batch: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        symbol = rng.choice(SYMBOLS)
        exchange = "ASX" if rng.random() < 0.8 else "SYN"
        # Few distinct instants and sequences, so rows tie on (time, sequence); some have none.
        at = T0 + timedelta(days=rng.randrange(3), seconds=rng.randrange(0, 6 * 3600, 7))
        sequence = rng.randrange(1, 50)
        row = trade_row(
            symbol,
            at,
            Decimal(rng.randrange(1000, 2000)) / 100,
            str(rng.randrange(1, 500)),
            exchange=exchange,
        )
        row["source_sequence"] = None if rng.random() < 0.1 else sequence
        row["trade_id"] = f"{exchange}-{symbol}-{batch}-{i}"
        row["message_id"] = message_id(exchange, "trade", row["trade_id"])
        rows.append(row)
    return rows


def _quotes(rng: random.Random, count: int) -> pa.Table:
    rows = []
    for i in range(count):
        symbol = rng.choice(SYMBOLS)
        bid = Decimal(rng.randrange(1000, 2000)) / 100
        rows.append(
            {
                "message_id": message_id("ASX", "quote", f"q{i}"),
                "quote_id": f"ASX-q{i}",
                "symbol": symbol,
                "exchange": "ASX",
                "asset_class": "equities",
                "timestamp": T0 + timedelta(days=rng.randrange(3), seconds=rng.randrange(0, 6 * 3600, 5)),
                "bid_price": None if rng.random() < 0.05 else bid,
                "bid_quantity": Decimal(rng.randrange(1, 50_000)) / 1000,
                "ask_price": bid + Decimal(rng.randrange(0, 5)) / 100,
                "ask_quantity": Decimal(rng.randrange(1, 500)),
                "currency": "AUD",
                "source_sequence": rng.randrange(1, 30),
                "ingestion_timestamp": T0,
                "platform_sequence": None,
                "vendor_data": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=QUOTE.arrow_schema())


def _build(lake: EmbeddedLake) -> None:
    rng = random.Random(7)
    for batch in range(3):  # overlapping commits: several files per partition
        lake.writer.append(TRADES, make_trade_rows(_trades(rng, 1500, batch)), {"k2.load.id": f"b{batch}"})
    # A file written by plain pyiceberg, in no particular order: its row groups must be sorted.
    shuffled = make_trade_rows(_trades(rng, 800, 9))
    lake.writer.table(TRADES).append(shuffled.take(pa.array(rng.sample(range(800), 800))))
    lake.writer.append(QUOTES, _quotes(rng, 3000), {"k2.load.id": "q"})


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedLake]:
    """A lake made to be awkward to read (see the module's docstring); tests must not write to it."""
    lake = EmbeddedLake.create(tmp_path_factory.mktemp("awkward") / "lake")
    _build(lake)
    yield lake
    lake.close()


def _reference(lake: EmbeddedLake, spec: TableSpec, where: str, params: dict[str, object]) -> pa.Table:
    """Rows of ``spec`` matching ``where`` in K2's order, by DuckDB over pyiceberg's plan."""
    paths = data_paths(lake.writer.table(spec))
    columns = ", ".join(f'"{n}"' for n in spec.record.names)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(
            f"SELECT {columns} FROM read_parquet($paths) WHERE {where} {ORDER}",
            params={"paths": paths, **params},
        ).to_arrow_table()


def _where(query: TickQuery) -> tuple[str, dict[str, object]]:
    clauses: list[str] = ["TRUE"]
    params: dict[str, object] = {}
    if query.symbols:
        clauses.append("symbol IN (SELECT unnest($symbols))")
        params["symbols"] = [s.upper() for s in query.symbols]
    if query.exchange:
        clauses.append("exchange = $exchange")
        params["exchange"] = query.exchange
    if query.start:
        clauses.append("timestamp >= $start")
        params["start"] = query.start
    if query.end:
        clauses.append("timestamp < $end")
        params["end"] = query.end
    return " AND ".join(clauses), params


def _all_pages(engine: QueryEngine, query: TickQuery, spec: TableSpec = TRADES) -> list[str]:
    read = trades if spec is TRADES else quotes
    ids: list[str] = []
    cursor = None
    while True:
        page = read(engine, TickQuery(**{**_fields(query), "cursor": cursor}))
        ids += page.rows["message_id"].to_pylist()
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def _fields(query: TickQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in TickQuery.__dataclass_fields__}


queries = st.builds(
    TickQuery,
    symbols=st.lists(st.sampled_from(SYMBOLS), max_size=3).map(tuple),
    exchange=st.sampled_from([None, "ASX", "SYN"]),
    start=st.one_of(st.none(), st.integers(-1, 3 * 86400).map(lambda s: T0 + timedelta(seconds=s))),
    end=st.one_of(st.none(), st.integers(3 * 86400 + 1, 4 * 86400).map(lambda s: T0 + timedelta(seconds=s))),
    limit=st.integers(1, 400),
    descending=st.booleans(),
)


@CHECKS
@given(query=queries, limit=st.integers(150, 1500))
def test_pages_follow_the_files_exact_order(awkward: EmbeddedLake, query: TickQuery, limit: int) -> None:
    """Every page, followed by its cursors to the end, gives the reference rows in order."""
    query = TickQuery(**{**_fields(query), "limit": limit})
    where, params = _where(query)
    expected = _reference(awkward, TRADES, where, params)["message_id"].to_pylist()
    if query.descending:
        expected.reverse()
    assert _all_pages(awkward.engine, query) == expected


@CHECKS
@given(query=queries)
def test_first_pages_are_whole_rows_equal_to_the_files(awkward: EmbeddedLake, query: TickQuery) -> None:
    """Every column of a first page equals the files' rows (decoded, cast and ordered right)."""
    where, params = _where(query)
    expected = _reference(awkward, TRADES, where, params)
    if query.descending:
        expected = expected.take(pa.array(range(expected.num_rows - 1, -1, -1), pa.int64()))
    page = trades(awkward.engine, query)
    assert page.rows.to_pylist() == expected.slice(0, query.limit).to_pylist()


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "2h", "1d"])
def test_bars_from_decoded_row_groups_equal_bars_duckdb_scans(
    awkward: EmbeddedLake, interval: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrow path (numpy over decoded row groups) and the wide one (DuckDB over Parquet)
    make the same bars, and their VWAP is the exact notional over volume.
    """
    query = BarQuery(Interval.parse(interval), symbols=("BHP", "RIO"), exchange="ASX")
    narrow = bars(awkward.engine, query)
    monkeypatch.setattr(sys.modules["k2.query.bars"], "NARROW_ROWS", 0)
    wide = bars(awkward.engine, query)
    assert narrow.num_rows > 0
    assert narrow.to_pylist() == wide.to_pylist()
    rows = _reference(awkward, TRADES, "symbol IN ('BHP', 'RIO') AND exchange = 'ASX'", {}).to_pylist()
    for bar in narrow.to_pylist():
        inside = [
            r
            for r in rows
            if r["symbol"] == bar["symbol"] and bar["interval_start"] <= r["timestamp"] < bar["interval_end"]
        ]
        notional = sum(r["price"] * r["quantity"] for r in inside)
        volume = sum(r["quantity"] for r in inside)
        assert (bar["open"], bar["close"]) == (inside[0]["price"], inside[-1]["price"])
        assert (bar["volume"], bar["trade_count"]) == (volume, len(inside))
        assert bar["vwap"] == (notional / volume).quantize(Decimal("1e-8"))


def test_prevailing_quotes_equal_an_asof_join_of_the_files(awkward: EmbeddedLake) -> None:
    """Each trade gets the last quote of its symbol and venue at or before it (of quotes at one
    instant, the last by sequence), or nulls past the tolerance.
    """
    page = trades(awkward.engine, TickQuery(limit=100_000))
    joined = with_prevailing_quotes(awkward.engine, page.rows, timedelta(minutes=10))
    quote_rows = _reference(awkward, QUOTES, "TRUE", {})
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("t", page.rows.select(["message_id", "symbol", "exchange", "timestamp"]))
        con.register("q", quote_rows)
        expected = (
            con.sql(
                """
            WITH last AS (SELECT * FROM q QUALIFY row_number() OVER (
                PARTITION BY symbol, exchange, timestamp
                ORDER BY coalesce(source_sequence, -1) DESC, message_id DESC) = 1)
            SELECT t.message_id, l.timestamp AS quote_timestamp, l.bid_price, l.bid_quantity,
                l.ask_price, l.ask_quantity
            FROM t ASOF LEFT JOIN last l
              ON t.symbol = l.symbol AND t.exchange = l.exchange AND t.timestamp >= l.timestamp
            """
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        con.close()
    by_id = {row["message_id"]: row for row in expected}
    matched = 0
    for row in joined.to_pylist():
        want = by_id[row["message_id"]]
        if want["quote_timestamp"] is None or row["timestamp"] - want["quote_timestamp"] > timedelta(
            minutes=10
        ):
            assert row["bid_price"] is None
            assert row["quote_timestamp"] is None
            continue
        matched += 1
        quote = ["quote_timestamp", "bid_price", "bid_quantity", "ask_price", "ask_quantity"]
        assert [row[name] for name in quote] == [want[name] for name in quote]
        if row["bid_price"] is None:
            assert row["spread"] is None
            assert row["mid_price"] is None
        else:
            assert row["spread"] == row["ask_price"] - row["bid_price"]
            assert abs(row["mid_price"] - (row["bid_price"] + row["ask_price"]) / 2) <= Decimal("0.000000005")
    assert matched > 1000


def _answers(engine: QueryEngine, as_of: AsOf = CURRENT) -> tuple[object, ...]:
    page = trades(engine, TickQuery(symbols=("BHP", "ZZZ"), limit=300, descending=True, as_of=as_of))
    minute = bars(engine, BarQuery(Interval.parse("1m"), symbols=("RIO",), as_of=as_of))
    daily = bars(engine, BarQuery(Interval.parse("1d"), as_of=as_of))
    return page.rows.to_pylist(), minute.to_pylist(), daily.to_pylist()


def _fresh(lake: EmbeddedLake, as_of: AsOf = CURRENT) -> tuple[object, ...]:
    """The answers of an engine with no cache that never read anything before."""
    engine = QueryEngine(lake.catalog, lake.settings.lake.namespace, QuerySettings(cache_bytes=0))
    try:
        return _answers(engine, as_of)
    finally:
        engine.close()


def test_a_warm_engine_answers_as_a_fresh_one_after_commits_compaction_expiry_and_schema_change(
    tmp_path: Path,
) -> None:
    """One long-lived engine (caches warm) against a fresh engine without cache, after each
    change to the table, for the current snapshot and a tagged old one.
    """
    lake = EmbeddedLake.create(tmp_path / "lake")
    first = AsOf(tag="first")
    try:
        rng = random.Random(3)
        lake.writer.append(TRADES, make_trade_rows(_trades(rng, 600, 0)), {"k2.load.id": "a"})
        tag(lake.writer.table(TRADES), "first")
        assert _answers(lake.engine) == _fresh(lake)
        lake.writer.append(TRADES, make_trade_rows(_trades(rng, 600, 1)), {"k2.load.id": "b"})
        assert _answers(lake.engine) == _fresh(lake)
        assert _answers(lake.engine, first) == _fresh(lake, first) != _fresh(lake)
        compact(lake.writer.table(TRADES), TRADES)
        assert _answers(lake.engine) == _fresh(lake)
        expire(lake.writer.table(TRADES), TRADES, older_than=datetime.now(UTC) + timedelta(seconds=1))
        remove_orphan_files(
            lake.writer.table(TRADES), TRADES, older_than=datetime.now(UTC) + timedelta(seconds=1)
        )
        assert _answers(lake.engine) == _fresh(lake)
        assert _answers(lake.engine, first) == _fresh(lake, first)
        with lake.writer.table(TRADES).update_schema() as update:
            update.add_column("venue_note", StringType())
        lake.writer.append(TRADES, make_trade_rows(_trades(rng, 300, 2)), {"k2.load.id": "c"})
        assert _answers(lake.engine) == _fresh(lake)
    finally:
        lake.close()


def test_preloading_decodes_the_newest_days_ahead_of_the_reads(awkward: EmbeddedLake) -> None:
    """After a preload of every day, reads decode nothing more, and answer as a fresh engine."""
    engine = QueryEngine(awkward.catalog, awkward.settings.lake.namespace, QuerySettings())
    try:
        done = preload(engine, days=30, stop=threading.Event())
        assert done.rows >= 5300
        misses = engine.blocks.counters.misses
        page = trades(engine, TickQuery(symbols=("BHP",), limit=500))
        assert engine.blocks.counters.misses == misses
        assert (
            page.rows.to_pylist()
            == trades(awkward.engine, TickQuery(symbols=("BHP",), limit=500)).rows.to_pylist()
        )
    finally:
        engine.close()
