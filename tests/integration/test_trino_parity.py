"""DuckDB and Trino answer the same API calls identically, over the same lake.

A private platform (PostgreSQL, MinIO and Trino on free ports, data under ``.k2``, all removed
after) holds the ASX sample; one API reads through DuckDB and another through Trino
(``K2_QUERY_ENGINE``), and every answer must be the same bytes of data: trades and quotes pages
with their cursors, bars, VWAP and TWAP, daily summaries, and time travel. Then K2 and Trino
write to each other's tables: a K2 commit is what Trino reads next, and a table Trino compacts
and expires is still read alike and keeps the sink's Kafka offsets.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from trino.dbapi import Connection

from k2.api import create_app
from k2.lake.tables import TRADES
from k2.platform import stack
from k2.platform.minio import Minio
from k2.platform.postgres import Postgres
from k2.platform.service import Service
from k2.platform.trino import Trino
from k2.settings import ApiSettings, DegradationSettings, K2Settings
from k2.stream.checkpoint import OFFSETS_PROPERTY, committed_offsets, encode
from k2.testing import EmbeddedLake, make_trade_rows, trade_row
from k2.testing.platforms import on_free_ports
from tests.fixtures.private_platform import scratch_root

pytestmark = [pytest.mark.platform, pytest.mark.trino]

KEY = {"X-API-Key": "test-key"}
DAYS = [f"2014-03-{day}" for day in range(10, 15)]
SYMBOLS = ["BHP", "DVN", "MWR", "RIO"]
WEEK = {"start_time": "2014-03-09T00:00:00Z", "end_time": "2014-03-15T00:00:00Z"}


@dataclass
class TrinoLake:
    """The lake on the private platform, and the two APIs reading it."""

    lake: EmbeddedLake
    trino: Trino
    duckdb_api: TestClient
    trino_api: TestClient

    def both(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """``GET path`` from both APIs; each must succeed."""
        answers = [api.get(path, params=params, headers=KEY) for api in (self.duckdb_api, self.trino_api)]
        assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
        return answers[0].json(), answers[1].json()

    def both_post(self, path: str, body: dict[str, Any]) -> tuple[Any, Any]:
        """``POST path`` from both APIs; each must succeed."""
        answers = [api.post(path, json=body, headers=KEY) for api in (self.duckdb_api, self.trino_api)]
        assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
        return answers[0].json(), answers[1].json()

    def sql(self, statement: str) -> list[list[Any]]:
        """Run ``statement`` on Trino in K2's catalog and namespace."""
        settings = self.lake.settings
        connection = Connection(
            host="127.0.0.1",
            port=settings.platform.trino_port,
            user="k2-tests",
            catalog=settings.lake.catalog_name,
            schema=settings.lake.namespace,
        )
        with closing(connection):
            cursor = connection.cursor()
            cursor.execute(statement)
            rows: list[list[Any]] = cursor.fetchall()
            return rows


def _api(settings: K2Settings, engine: str) -> TestClient:
    """The API over ``settings``' lake reading through ``engine``; it never degrades (a smaller
    page under load would differ from the other engine's).
    """
    settings = settings.model_copy(
        update={
            "api": ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="100000/minute"),
            "query": settings.query.model_copy(update={"engine": engine}),
            "degradation": DegradationSettings(enabled=False),
        }
    )
    return TestClient(create_app(settings, registry=CollectorRegistry()))


@pytest.fixture(scope="module")
def trino_lake(asx_sample: Path) -> Iterator[TrinoLake]:
    """The ASX sample on a private platform with Trino (installed on first use), stopped and
    removed after.
    """
    with scratch_root("trino-") as root:
        settings = on_free_ports(root)
        # Expiry to the present, so that the test can expire the snapshots K2's sink wrote.
        trino = Trino(settings, expire_min_retention="0s")
        services: list[Service] = [Postgres(settings), Minio(settings), trino]
        try:
            for service in services:
                service.start()
            lake = EmbeddedLake.open(settings)
            try:
                lake.load_asx(asx_sample)
                with _api(settings, "duckdb") as duckdb_api, _api(settings, "trino") as trino_api:
                    yield TrinoLake(lake, trino, duckdb_api, trino_api)
            finally:
                lake.close()
        finally:
            for service in reversed(services):
                service.stop()


def _pages(lake: TrinoLake, path: str, params: dict[str, Any]) -> int:
    """Follow ``next_cursor`` on both engines page by page, requiring each page to be identical
    (rows, snapshot and cursor); return the rows read.
    """
    rows = 0
    query = dict(params)
    while True:
        duck, trino = lake.both(path, query)
        assert duck["data"] == trino["data"]
        assert duck["pagination"] == trino["pagination"]
        assert duck["meta"]["snapshot_id"] == trino["meta"]["snapshot_id"]
        rows += len(duck["data"])
        if not duck["pagination"]["next_cursor"]:
            return rows
        query["cursor"] = duck["pagination"]["next_cursor"]


@pytest.mark.parametrize(
    ("params", "rows"),
    [
        ({"symbol": "BHP", "limit": 5000}, 91631),
        ({"symbol": "DVN", "limit": 37, "order": "desc"}, 232),
        ({"symbol": ["MWR", "DVN"], "limit": 40, **WEEK}, 243),
        ({"exchange": "ASX", "start_time": "2014-03-12T00:00:00Z", "end_time": "2014-03-12T01:00:00Z"}, 5136),
    ],
    ids=["bhp-asc", "dvn-desc", "two-symbols", "one-hour-all-symbols"],
)
def test_trade_pages_and_their_cursors_are_identical(
    trino_lake: TrinoLake, params: dict[str, Any], rows: int
) -> None:
    """Every page of trades, followed by its cursor to the end, is the same on both engines."""
    assert _pages(trino_lake, "/v1/trades", params) == rows


def test_quote_pages_are_identical(trino_lake: TrinoLake) -> None:
    """Quotes page alike too, ties within a millisecond included."""
    assert _pages(trino_lake, "/v1/quotes", {"symbol": ["DVN", "MWR"], "limit": 100}) == 609


def test_cursors_cross_engines(trino_lake: TrinoLake) -> None:
    """A cursor DuckDB issued continues on Trino where DuckDB would (and the reverse)."""
    params = {"symbol": "RIO", "limit": 1000}
    duck_first, trino_first = trino_lake.both("/v1/trades", params)
    crossed = {**params, "cursor": duck_first["pagination"]["next_cursor"]}
    duck_next, trino_next = trino_lake.both("/v1/trades", crossed)
    assert trino_next["data"] == duck_next["data"]
    assert trino_first["pagination"]["next_cursor"] == duck_first["pagination"]["next_cursor"]


def test_decimals_and_microsecond_times_round_trip(trino_lake: TrinoLake) -> None:
    """Prices with eight decimals and times with microseconds come back exactly through Trino."""
    at = datetime(2014, 3, 16, 1, 2, 3, 456789, tzinfo=UTC)
    row = trade_row("XPR", at, "12.34567891", "0.00000001", sequence=7)
    trino_lake.lake.writer.append(TRADES, make_trade_rows([row]), {"k2.load.id": "decimals"})
    duck, trino = trino_lake.both("/v1/trades", {"symbol": "XPR"})
    assert duck["data"] == trino["data"]
    assert (trino["data"][0]["price"], trino["data"][0]["quantity"], trino["data"][0]["timestamp"]) == (
        "12.34567891",
        "0.00000001",
        "2014-03-16T01:02:03.456789Z",
    )


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1d"])
def test_bars_vwap_and_twap_are_identical(trino_lake: TrinoLake, interval: str) -> None:
    """OHLCV, exact VWAP, TWAP and counts of every bucket of the week match."""
    body = {
        "symbols": SYMBOLS,
        "interval": interval,
        "metrics": ["ohlcv", "vwap", "twap", "trade_count"],
        **WEEK,
    }
    duck, trino = trino_lake.both_post("/v1/aggregations", body)
    assert duck["data"]
    assert duck["data"] == trino["data"]


def test_daily_summaries_are_identical(trino_lake: TrinoLake) -> None:
    """Each symbol's summary of each ASX trading day matches (404 alike where it did not trade)."""
    for symbol in SYMBOLS:
        for day in DAYS:
            answers = [
                api.get(f"/v1/summary/{symbol}/{day}", headers=KEY)
                for api in (trino_lake.duckdb_api, trino_lake.trino_api)
            ]
            assert answers[0].status_code == answers[1].status_code
            assert answers[0].json()["data" if answers[0].status_code == 200 else "error"].keys()
            if answers[0].status_code == 200:
                assert answers[0].json()["data"] == answers[1].json()["data"]


def test_post_reads_with_fields_and_parquet_answers_are_identical(trino_lake: TrinoLake) -> None:
    """A POST read choosing columns, and a Parquet answer, are the same through both engines."""
    body = {"symbols": ["RIO"], "fields": ["timestamp", "price", "trade_conditions"], "limit": 2000, **WEEK}
    duck, trino = trino_lake.both_post("/v1/trades/query", body)
    assert duck["data"] == trino["data"]
    params: dict[str, str | int] = {"symbol": "DVN", "limit": 500, "format": "parquet"}
    answers = [
        api.get("/v1/trades", params=params, headers=KEY)
        for api in (trino_lake.duckdb_api, trino_lake.trino_api)
    ]
    tables = [pq.read_table(io.BytesIO(a.content)) for a in answers]
    assert tables[0].num_rows == 232
    assert tables[0].equals(tables[1])


def test_time_travel_by_snapshot_tag_and_time(trino_lake: TrinoLake) -> None:
    """Reads as of an older snapshot, a tag on it, and a time just after it match on both engines
    and do not see a later K2 write.
    """
    lake = trino_lake.lake
    table = lake.engine.table(TRADES)
    before = table.current_snapshot()
    assert before is not None
    table.manage_snapshots().create_tag(before.snapshot_id, "before-late-trade").commit()
    at = datetime.fromtimestamp(before.timestamp_ms / 1000, UTC) + timedelta(milliseconds=1)
    late = trade_row("BHP", datetime(2014, 3, 14, 7, 0, tzinfo=UTC), "40", "1", sequence=999_999)
    lake.writer.append(TRADES, make_trade_rows([late]), {"k2.load.id": "late"})
    newest = {"symbol": "BHP", "limit": 5, "order": "desc"}
    for point in (
        {"as_of_snapshot": before.snapshot_id},
        {"as_of_tag": "before-late-trade"},
        {"as_of_time": at.isoformat().replace("+00:00", "Z")},
    ):
        duck, trino = trino_lake.both("/v1/trades", {**newest, **point})
        assert duck["data"] == trino["data"]
        assert trino["meta"]["snapshot_id"] == before.snapshot_id
        assert trino["data"][0]["price"] != "40"
        bars = {"symbols": ["BHP"], "interval": "1d", **WEEK, **point}
        assert (
            trino_lake.both_post("/v1/aggregations", bars)[0]["data"]
            == trino_lake.both_post("/v1/aggregations", bars)[1]["data"]
        )
    _, now = trino_lake.both("/v1/trades", newest)
    assert now["data"][0]["price"] == "40"


def test_a_k2_write_is_what_trino_reads_next(trino_lake: TrinoLake) -> None:
    """After Trino read the table, a K2 commit is visible to Trino at the new snapshot."""
    [[before]] = trino_lake.sql("SELECT count(*) FROM trades WHERE symbol = 'NEW'")
    row = trade_row("NEW", datetime(2014, 3, 14, 1, 0, tzinfo=UTC), "1.5", "10")
    result = trino_lake.lake.writer.append(TRADES, make_trade_rows([row]), {"k2.load.id": "new"})
    [[after]] = trino_lake.sql("SELECT count(*) FROM trades WHERE symbol = 'NEW'")
    [[current]] = trino_lake.sql(
        'SELECT snapshot_id FROM "trades$snapshots" ORDER BY committed_at DESC LIMIT 1'
    )
    assert (before, after, current) == (0, 1, result.snapshot_id)


def test_a_table_trino_compacts_and_expires_keeps_reads_and_sink_offsets(trino_lake: TrinoLake) -> None:
    """Trino's optimize and expire_snapshots commit without K2's summary properties; K2 still reads
    the same rows, lists the same symbols and finds the Kafka offsets its sink committed last.
    """
    lake = trino_lake.lake
    offsets = {"k2.trades": {0: 120, 1: 77}}
    for hour in range(3):  # small files, each a "sink" commit recording its offsets
        row = trade_row("SNK", datetime(2014, 3, 13, hour, tzinfo=UTC), "2", "5", sequence=hour)
        lake.writer.append(TRADES, make_trade_rows([row]), {OFFSETS_PROPERTY: encode(offsets)})
    pages = {"symbol": ["SNK", "DVN", "MWR"], "limit": 100}
    reference, _ = trino_lake.both("/v1/trades", pages)
    listed, _ = trino_lake.both("/v1/symbols", {})
    assert {"exchange": "ASX", "symbol": "SNK"} in listed["data"]
    trino_lake.sql("ALTER TABLE trades EXECUTE optimize")
    trino_lake.sql("ALTER TABLE trades EXECUTE expire_snapshots(retention_threshold => '0s')")
    table = lake.engine.table(TRADES)
    current = table.current_snapshot()
    assert current is not None
    # Only the compacted snapshot (and a tagged one) are left: none that the sink wrote.
    assert not [
        s for s in table.snapshots() if s.summary and OFFSETS_PROPERTY in s.summary.additional_properties
    ]
    assert current.summary is not None
    assert current.summary.operation.value == "replace"
    duck, trino = trino_lake.both("/v1/trades", pages)
    assert duck["data"] == trino["data"] == reference["data"]
    assert committed_offsets(table) == offsets
    duck_symbols, trino_symbols = trino_lake.both("/v1/symbols", {})
    assert duck_symbols["data"] == trino_symbols["data"] == listed["data"]
    duckdb_count = lake.engine.run(
        "SELECT count(*) AS n FROM read_parquet($paths)", {"paths": lake.engine.scan(TRADES).paths}
    )
    assert [[duckdb_count["n"][0].as_py()]] == trino_lake.sql("SELECT count(*) FROM trades")


def test_what_only_duckdb_answers_is_refused_clearly_under_trino(trino_lake: TrinoLake) -> None:
    """The prevailing-quote join, adjustment, the live tail, replay and coverage answer 400
    UNSUPPORTED_BY_ENGINE through Trino.
    """
    api = trino_lake.trino_api
    refused = [
        api.get("/v1/trades", params={"symbol": "BHP", "with_quotes": True}, headers=KEY),
        api.get("/v1/trades", params={"symbol": "BHP", "adjustment": "split"}, headers=KEY),
        api.get("/v1/trades/recent", headers=KEY),
        api.get("/v1/coverage", params={"symbol": "BHP", **WEEK}, headers=KEY),
        api.post(
            "/v1/replay",
            json={"data_type": "trades", "symbols": ["BHP"], **WEEK},
            headers=KEY,
        ),
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in refused] == [
        (400, "UNSUPPORTED_BY_ENGINE")
    ] * len(refused)


def test_trino_listens_on_loopback_only(trino_lake: TrinoLake) -> None:
    """Trino's HTTP server is bound to 127.0.0.1, not to every interface, says it is healthy, and
    counts as a platform service while it runs (so `k2 platform status` and `down` cover it).
    """
    port = f"{trino_lake.lake.settings.platform.trino_port:04X}"
    bound = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and local.endswith(f":{port}"):
                bound.add(local.rsplit(":", 1)[0])
    # 127.0.0.1 as IPv4, or as an IPv4-mapped IPv6 address, in /proc's byte order.
    assert bound
    assert bound <= {"0100007F", "0000000000000000FFFF00000100007F"}
    assert trino_lake.trino.health().healthy
    ready = trino_lake.trino_api.get("/health/ready").json()
    assert {d["name"]: d["status"] for d in ready["dependencies"]} == {"catalog": "ok", "trino": "ok"}
    assert "trino" in [service.name for service in stack.services(trino_lake.lake.settings)]
