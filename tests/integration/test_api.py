"""The REST API over a real embedded lake holding the ASX sample."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from k2.api import create_app
from k2.lake.maintenance import tag
from k2.lake.tables import DIVIDENDS, QUOTES, SPLITS, TRADES
from k2.schemas.market import DIVIDEND, SPLIT
from k2.settings import ApiSettings
from k2.testing import EmbeddedLake, make_quote_rows, make_trade_rows, quote_row, trade_row

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key"}


def _client(lake: EmbeddedLake, rate_limit: str = "100/minute") -> TestClient:
    keys = SecretStr("tester:test-key,other:other-key")
    settings = lake.settings.model_copy(update={"api": ApiSettings(keys=keys, rate_limit=rate_limit)})
    return TestClient(create_app(settings, registry=CollectorRegistry()))


@pytest.fixture(
    scope="module",
    params=["asx_lake", pytest.param("platform_asx_lake", marks=pytest.mark.platform)],
    ids=["embedded", "platform"],
)
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The API over the ASX sample: in the embedded lake, and on PostgreSQL + MinIO unchanged."""
    lake: EmbeddedLake = request.getfixturevalue(request.param)
    with _client(lake, "100000/minute") as test_client:
        yield test_client


def test_trades_page_with_exact_decimals_and_utc_times(client: TestClient) -> None:
    """GET /v1/trades returns rows with decimal strings, Z times, snapshot and cursor."""
    response = client.get("/v1/trades", params={"symbol": "BHP", "limit": 3}, headers=KEY)
    assert response.status_code == 200
    body = response.json()
    first = body["data"][0]
    assert (first["price"], first["quantity"], first["timestamp"]) == (
        "36.667",
        "20000",
        "2014-03-09T20:57:14.754000Z",
    )
    assert body["meta"]["count"] == 3
    assert body["pagination"]["next_cursor"]
    assert response.headers["x-snapshot-id"] == str(body["meta"]["snapshot_id"])


def test_cursor_pages_walk_the_whole_range_once(client: TestClient) -> None:
    """Following next_cursor returns every trade of the window exactly once."""
    params: dict[str, str | int] = {"symbol": "DVN", "limit": 50}
    seen: list[str] = []
    while True:
        body = client.get("/v1/trades", params=params, headers=KEY).json()
        seen += [row["message_id"] for row in body["data"]]
        if not body["pagination"]["next_cursor"]:
            break
        params["cursor"] = body["pagination"]["next_cursor"]
    assert len(seen) == len(set(seen)) == 232


def test_summary_uses_the_exchange_local_day(client: TestClient) -> None:
    """The brief's example: BHP on the ASX trading day 2014-03-10."""
    body = client.get("/v1/summary/BHP/2014-03-10", headers=KEY).json()["data"]
    assert (body["open"], body["close"], body["trade_count"], body["exchange"]) == (
        "36.667",
        "36.16",
        17000,
        "ASX",
    )
    assert Decimal(body["vwap"]) == Decimal("36.52264159")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_other_formats_carry_the_same_rows(client: TestClient, fmt: str) -> None:
    """CSV, Parquet and Arrow IPC give the same rows as JSON; Parquet keeps decimals as decimals."""
    params: dict[str, str | int] = {"symbol": "MWR", "limit": 100, "format": fmt}
    response = client.get("/v1/trades", params=params, headers=KEY)
    assert response.status_code == 200
    if fmt == "csv":
        lines = response.text.strip().splitlines()
        assert lines[0].startswith("message_id,trade_id")
        assert len(lines) == 12
    else:
        table = (
            pq.read_table(pa.BufferReader(response.content))
            if fmt == "parquet"
            else pa.ipc.open_stream(response.content).read_all()
        )
        assert table.num_rows == 11
        assert pa.types.is_decimal(table.schema.field("price").type)


def test_metadata_endpoints(client: TestClient) -> None:
    """Symbols, stats and snapshots answer from metadata."""
    symbols = client.get("/v1/symbols", headers=KEY).json()["data"]
    assert [s["symbol"] for s in symbols] == ["BHP", "DVN", "MWR", "RIO"]
    stats = {t["table"]: t["rows"] for t in client.get("/v1/stats", headers=KEY).json()["data"]}
    assert stats == {"trades": 200_545, "quotes": 169_629}
    snapshots = client.get("/v1/snapshots", params={"table": "quotes"}, headers=KEY).json()["data"]
    assert snapshots[0]["total_records"] == 169_629


def test_time_travel_on_reads(client: TestClient) -> None:
    """as_of_snapshot reads that snapshot; an unknown one is a 404 with the stable body."""
    snapshot = client.get("/v1/snapshots", headers=KEY).json()["data"][-1]["snapshot_id"]
    ok = client.get("/v1/trades", params={"symbol": "MWR", "as_of_snapshot": snapshot}, headers=KEY)
    assert ok.json()["meta"]["snapshot_id"] == snapshot
    missing = client.get("/v1/trades", params={"as_of_snapshot": 1}, headers=KEY)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SNAPSHOT_NOT_FOUND"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "UNAUTHORIZED"), ({"X-API-Key": "wrong"}, 403, "FORBIDDEN")],
)
def test_keys_are_required_on_v1(client: TestClient, headers: dict[str, str], status: int, code: str) -> None:
    """A missing key is 401, a wrong one 403; health and metrics need none."""
    response = client.get("/v1/symbols", headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_rate_limit_per_key_with_headers(asx_lake: EmbeddedLake) -> None:
    """Past its allowance a key gets 429 with Retry-After; other keys are unaffected."""
    with _client(asx_lake, "3/minute") as limited:
        codes = []
        for _ in range(4):
            response = limited.get("/v1/symbols", headers=KEY)
            codes.append(response.status_code)
        assert codes == [200, 200, 200, 429]
        assert response.json()["error"]["code"] == "RATE_LIMITED"
        assert int(response.headers["retry-after"]) >= 1
        ok = limited.get("/v1/symbols", headers={"X-API-Key": "other-key"})
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-limit"] == "3"
        assert ok.headers["x-ratelimit-remaining"] == "2"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"start_time": "yesterday"}, "query.start_time"),
        ({"symbol": "BHP' OR '1'='1"}, "query.symbol.0"),
        ({"exchange": "ASX; DROP TABLE trades"}, "query.exchange"),
        ({"format": "xml"}, "query.format"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(
    client: TestClient, params: dict[str, str | int], field: str
) -> None:
    """Malformed and hostile values are refused by type with the field named, never a 500."""
    response = client.get("/v1/trades", params=params, headers=KEY)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in error["details"]]


def test_limits_on_rows_and_span(client: TestClient) -> None:
    """Too many rows or too long a span is a clear 400."""
    too_many = client.get("/v1/trades", params={"limit": 10_000_000}, headers=KEY)
    assert too_many.json()["error"]["code"] == "INVALID_PARAMETER"
    too_long = client.get(
        "/v1/trades", params={"start_time": "2000-01-01", "end_time": "2014-01-01"}, headers=KEY
    )
    assert too_long.status_code == 400


def test_correlation_id_is_echoed_or_made(client: TestClient) -> None:
    """A valid X-Correlation-ID comes back; an invalid one is replaced, never echoed."""
    good = client.get("/health", headers={"X-Correlation-ID": "abc-123"})
    assert good.headers["x-correlation-id"] == "abc-123"
    bad = client.get("/v1/trades", headers={"X-Correlation-ID": "x" * 500})
    assert bad.headers["x-correlation-id"] != "x" * 500
    assert bad.json()["error"]["correlation_id"] == bad.headers["x-correlation-id"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_summary_of_the_calendars_ends_is_400(client: TestClient, day: str) -> None:
    """Days whose time-zone bounds overflow the calendar are refused, not a 500 (found by schemathesis)."""
    response = client.get(f"/v1/summary/BHP/{day}", headers=KEY)
    assert response.status_code == 400
    assert response.json()["error"]["correlation_id"]


def test_unknown_routes_and_summaries_use_the_error_body(client: TestClient) -> None:
    """404s, whether route or data, carry the same body."""
    assert client.get("/nope").json()["error"]["code"] == "NOT_FOUND"
    missing = client.get(f"/v1/summary/MWR/{date(2014, 3, 15)}", headers=KEY)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_metrics_use_route_templates(client: TestClient) -> None:
    """Request metrics are labelled by route template, never by raw path."""
    client.get("/v1/summary/BHP/2014-03-11", headers=KEY)
    text = client.get("/metrics").text
    assert 'route="/v1/summary/{symbol}/{day}"' in text
    assert "2014-03-11" not in text


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


def test_metrics_count_query_outcomes_and_show_the_lakes_tables(client: TestClient) -> None:
    """Each query kind's executions are counted by outcome; the lake's gauges agree with /v1/stats."""
    before = client.get("/metrics").text
    client.get("/v1/summary/BHP/2014-03-11", headers=KEY)
    client.get("/v1/summary/MWR/2014-03-15", headers=KEY)
    after = client.get("/metrics").text

    def grew(outcome: str) -> float:
        def value(text: str) -> float:
            try:
                return _sample(text, "k2_query_executions_total", query="summary", outcome=outcome)
            except AssertionError:
                return 0.0

        return value(after) - value(before)

    assert (grew("ok"), grew("no_data")) == (1.0, 1.0)
    stats = {row["table"]: row for row in client.get("/v1/stats", headers=KEY).json()["data"]}
    trades = stats["trades"]
    assert _sample(after, "k2_iceberg_table_rows", table="trades") == trades["rows"]
    assert _sample(after, "k2_iceberg_table_data_files", table="trades") == trades["data_files"]
    assert (
        _sample(after, "k2_iceberg_partition_files_max", table="trades") == trades["max_files_per_partition"]
    )
    assert 1 <= trades["max_files_per_partition"] <= trades["data_files"]
    committed = datetime.fromisoformat(trades["last_commit"].replace("Z", "+00:00"))
    assert _sample(after, "k2_iceberg_last_commit_timestamp_seconds", table="trades") == pytest.approx(
        committed.timestamp(), abs=0.001
    )


def test_empty_lake_reports_no_data(tmp_path: Path) -> None:
    """Before any load, reads are a 404 NO_DATA and health still answers."""
    with _client(EmbeddedLake.create(tmp_path / "empty")) as empty:
        assert empty.get("/v1/trades", headers=KEY).json()["error"]["code"] == "NO_DATA"
        assert orjson.loads(empty.get("/health").content)["status"] == "ok"


def test_post_query_several_symbols_and_chosen_fields(client: TestClient) -> None:
    """POST /v1/trades/query returns only the asked fields for all the asked symbols."""
    body = {"symbols": ["MWR", "DVN"], "fields": ["symbol", "price"], "limit": 1000}
    data = client.post("/v1/trades/query", json=body, headers=KEY).json()["data"]
    assert set(data[0]) == {"symbol", "price"}
    assert {row["symbol"] for row in data} == {"MWR", "DVN"}
    assert len(data) == 11 + 232


def test_post_query_rejects_unknown_fields_and_extra_keys(client: TestClient) -> None:
    """Unknown columns and unknown body keys are 400s that say what is wrong."""
    unknown = client.post("/v1/trades/query", json={"fields": ["price", "colour"]}, headers=KEY)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "INVALID_PARAMETER")
    extra = client.post("/v1/trades/query", json={"sql": "SELECT 1"}, headers=KEY)
    assert extra.status_code == 400
    assert "body.sql" in [d["field"] for d in extra.json()["error"]["details"]]


def test_snapshot_query_reads_that_snapshot(client: TestClient) -> None:
    """POST /v1/snapshots/{id}/query answers from the named snapshot; unknown ids are 404."""
    snapshot = client.get("/v1/snapshots", params={"table": "quotes"}, headers=KEY).json()["data"][0][
        "snapshot_id"
    ]
    ok = client.post(
        f"/v1/snapshots/{snapshot}/query", json={"data_type": "quotes", "symbols": ["MWR"]}, headers=KEY
    )
    assert ok.json()["meta"]["snapshot_id"] == snapshot
    assert ok.json()["meta"]["count"] == 60
    assert client.post("/v1/snapshots/42/query", json={}, headers=KEY).status_code == 404


def test_replay_walks_in_event_order_with_progress(client: TestClient) -> None:
    """Replay pages cover the range once, in (timestamp, sequence) order, ending at 100 %."""
    body: dict[str, object] = {
        "symbols": ["DVN"],
        "start_time": "2014-03-09T00:00:00Z",
        "end_time": "2014-03-15T00:00:00Z",
        "batch_size": 100,
    }
    rows: list[dict[str, object]] = []
    progress: list[float] = []
    while True:
        page = client.post("/v1/replay", json=body, headers=KEY).json()
        rows += page["data"]
        progress.append(page["progress"]["percent"])
        if page["progress"]["done"]:
            break
        body["cursor"] = page["pagination"]["next_cursor"]
    assert len(rows) == 232
    keys = [(r["timestamp"], r["source_sequence"]) for r in rows]
    assert keys == sorted(keys)
    assert progress == sorted(progress)
    assert progress[-1] == 100.0


def test_aggregations_ohlcv_vwap_and_time_weighted_twap(lake: EmbeddedLake) -> None:
    """TWAP weighs each price by how long it stood, unlike the plain mean the reference used."""
    t0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)
    rows = [
        trade_row("BHP", t0, "10", sequence=1),
        trade_row("BHP", t0 + timedelta(seconds=45), "20", sequence=2),
    ]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "t"})
    with _client(lake) as api:
        body = {
            "symbols": ["BHP"],
            "metrics": ["ohlcv", "vwap", "twap", "trade_count"],
            "interval": "1m",
            "start_time": "2024-01-08T00:00:00Z",
            "end_time": "2024-01-08T00:05:00Z",
        }
        (bucket,) = api.post("/v1/aggregations", json=body, headers=KEY).json()["data"]
    assert (bucket["open"], bucket["close"], bucket["trade_count"]) == ("10", "20", 2)
    assert bucket["vwap"] == "15"
    assert bucket["twap"] == "12.5"  # 10 stood 45 s, 20 stood 15 s
    assert bucket["interval_start"] == "2024-01-08T00:00:00.000000Z"


def test_second_bars_split_a_minute_where_its_trades_fall(lake: EmbeddedLake) -> None:
    """A chart zoomed into minutes asks for 5-second bars: each holds only its own trades, and
    together they make the minute's bar."""
    t0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)
    prices = {0: "10", 3: "12", 7: "11", 31: "9", 59: "13"}
    rows = [
        trade_row("BHP", t0 + timedelta(seconds=at), price, sequence=i)
        for i, (at, price) in enumerate(prices.items())
    ]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "s"})
    body = {"symbols": ["BHP"], "start_time": "2024-01-08T00:00:00Z", "end_time": "2024-01-08T00:01:00Z"}
    with _client(lake) as api:
        seconds = api.post("/v1/aggregations", json={**body, "interval": "5s"}, headers=KEY).json()["data"]
        (minute,) = api.post("/v1/aggregations", json={**body, "interval": "1m"}, headers=KEY).json()["data"]
    assert [(b["interval_start"][17:19], b["open"], b["close"]) for b in seconds] == [
        ("00", "10", "12"),
        ("05", "11", "11"),
        ("30", "9", "9"),
        ("55", "13", "13"),
    ]
    assert (seconds[0]["open"], seconds[-1]["close"]) == (minute["open"], minute["close"])
    assert max(Decimal(b["high"]) for b in seconds) == Decimal(minute["high"])


def test_aggregations_refuse_huge_bucket_counts(client: TestClient) -> None:
    """Asking for millions of buckets is a 400, not a slow death."""
    body = {
        "symbols": ["BHP", "RIO"],
        "interval": "1m",
        "start_time": "2013-01-01T00:00:00Z",
        "end_time": "2014-01-01T00:00:00Z",
    }
    response = client.post("/v1/aggregations", json=body, headers=KEY)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "INVALID_PARAMETER")


def test_oversized_bodies_are_413(client: TestClient) -> None:
    """Bodies over the limit are refused whether or not they declare their length."""
    huge = b'{"symbols": [' + b'"BHP",' * 400_000 + b'"RIO"]}'
    declared = client.post(
        "/v1/trades/query", content=huge, headers={**KEY, "Content-Type": "application/json"}
    )
    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    streamed = client.post(
        "/v1/trades/query", content=chunks(), headers={**KEY, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_replay_of_an_empty_range_is_done_at_once(client: TestClient) -> None:
    """A range with no partitions at all (found by schemathesis: it once gave a 500) ends at once."""
    body = {"start_time": "2001-01-01T00:00:00Z", "end_time": "2001-01-02T00:00:00Z"}
    page = client.post("/v1/replay", json=body, headers=KEY).json()
    assert (page["data"], page["progress"]["done"], page["progress"]["total"]) == ([], True, 0)


def test_trades_with_prevailing_quotes(client: TestClient) -> None:
    """with_quotes adds the bid/ask in force at each trade, within the tolerance, else nulls."""
    params: dict[str, str | int] = {
        "symbol": "BHP",
        "start_time": "2014-03-09T23:30:00Z",
        "limit": 3,
        "with_quotes": "true",
    }
    (first, *_) = client.get("/v1/trades", params=params, headers=KEY).json()["data"]
    assert (first["bid_price"], first["ask_price"], first["mid_price"], first["spread"]) == (
        "36.75",
        "36.76",
        "36.755",
        "0.01",
    )
    assert first["quote_timestamp"] <= first["timestamp"]
    pre_open = client.get(
        "/v1/trades",
        params={"symbol": "BHP", "limit": 1, "with_quotes": "true", "quote_tolerance_ms": 1000},
        headers=KEY,
    ).json()["data"][0]
    assert pre_open["bid_price"] is None


def test_a_tag_on_the_trades_alone_reads_the_quotes_of_its_time(lake: EmbeddedLake) -> None:
    """Trades read as of a tag the quotes table lacks carry the quote that prevailed when the tagged
    trades were committed (once a 404: "quotes has no tag"), not one corrected later."""
    at = datetime(2024, 1, 8, 1, tzinfo=UTC)
    lake.writer.append(QUOTES, make_quote_rows([quote_row("BHP", at, "9.98", "10.02")]), {"k2.load.id": "q1"})
    lake.writer.append(
        TRADES, make_trade_rows([trade_row("BHP", at + timedelta(seconds=1))]), {"k2.load.id": "t"}
    )
    tag(lake.writer.table(TRADES), "audit")
    corrected = quote_row("BHP", at + timedelta(milliseconds=500), "9.99", "10.01", sequence=2)
    lake.writer.append(QUOTES, make_quote_rows([corrected]), {"k2.load.id": "q2"})
    params = {"symbol": "BHP", "with_quotes": "true"}
    with _client(lake) as api:
        (tagged,) = api.get("/v1/trades", params={**params, "as_of_tag": "audit"}, headers=KEY).json()["data"]
        (latest,) = api.get("/v1/trades", params=params, headers=KEY).json()["data"]
    assert (tagged["bid_price"], tagged["ask_price"]) == ("9.98", "10.02")
    assert (latest["bid_price"], latest["ask_price"]) == ("9.99", "10.01")


def test_coverage_lists_days_and_missing_weekdays(client: TestClient, lake: EmbeddedLake) -> None:
    """Days with data carry counts; a weekday between them with nothing shows as zero rows."""
    data = client.get("/v1/coverage", params={"symbol": "MWR"}, headers=KEY).json()["data"]
    assert {row["day"]: row["rows"] for row in data} == {
        "2014-03-10": 4,
        "2014-03-11": 3,
        "2014-03-12": 3,
        "2014-03-13": 1,
    }
    monday, wednesday = datetime(2024, 1, 8, 1, tzinfo=UTC), datetime(2024, 1, 10, 1, tzinfo=UTC)
    rows = [trade_row("BHP", monday), trade_row("BHP", wednesday, sequence=2)]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "t"})
    with _client(lake) as api:
        gap = api.get("/v1/coverage", headers=KEY).json()["data"]
    assert [(row["day"], row["rows"]) for row in gap] == [
        ("2024-01-08", 1),
        ("2024-01-09", 0),
        ("2024-01-10", 1),
    ]


def test_sequence_gaps_name_the_missing_numbers(client: TestClient, lake: EmbeddedLake) -> None:
    """The ASX sample has no holes; numbers 3-4 missing from a day are listed with the time before them."""
    assert client.get("/v1/coverage/gaps", params={"table": "quotes"}, headers=KEY).json()["data"] == []
    start = datetime(2024, 1, 8, 1, tzinfo=UTC)
    rows = [trade_row("BHP", start + timedelta(seconds=s), sequence=s) for s in (1, 2, 5, 6, 8)]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "t"})
    with _client(lake) as api:
        gaps = api.get("/v1/coverage/gaps", params={"symbol": "BHP"}, headers=KEY).json()["data"]
    assert [(g["first_missing"], g["last_missing"], g["missing"]) for g in gaps] == [(3, 4, 2), (7, 7, 1)]
    assert gaps[0]["after"] == "2024-01-08T01:00:02.000000Z"
    assert gaps[0]["day"] == "2024-01-08"


def test_split_and_dividend_adjusted_prices(lake: EmbeddedLake) -> None:
    """Before a 2:1 split prices halve and sizes double; before a dividend of 1 on a close of 50,
    prices scale by 0.98; only events up to adjustment_as_of count; raw leaves prices alone."""
    day = [datetime(2024, 1, d, 1, tzinfo=UTC) for d in (8, 9, 10)]  # ASX local days 8, 9, 10 January
    rows = [
        trade_row("BHP", day[0], "100", "10", sequence=1),
        trade_row("BHP", day[1], "50", "20", sequence=1),
        trade_row("BHP", day[2], "49", "20", sequence=1),
    ]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "t"})
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    split = {
        "symbol": "BHP",
        "exchange": "ASX",
        "effective_date": date(2024, 1, 9),
        "ratio": Decimal(2),
        "ingestion_timestamp": stamp,
    }
    dividend = {
        "symbol": "BHP",
        "exchange": "ASX",
        "declared_date": date(2024, 1, 2),
        "ex_date": date(2024, 1, 10),
        "record_date": None,
        "pay_date": None,
        "net_amount": Decimal(1),
        "gross_amount": None,
        "currency": "AUD",
        "ingestion_timestamp": stamp,
    }
    lake.writer.replace(SPLITS, pa.Table.from_pylist([split], schema=SPLIT.arrow_schema()), "ASX", {})
    lake.writer.replace(
        DIVIDENDS, pa.Table.from_pylist([dividend], schema=DIVIDEND.arrow_schema()), "ASX", {}
    )
    with _client(lake) as api:

        def prices(**params: str) -> list[tuple[str, str]]:
            data = api.get("/v1/trades", params={"symbol": "BHP", **params}, headers=KEY).json()["data"]
            return [(row["price"], row["quantity"]) for row in data]

        assert prices() == [("100", "10"), ("50", "20"), ("49", "20")]
        assert prices(adjustment="split") == [("50", "20"), ("50", "20"), ("49", "20")]
        assert prices(adjustment="all") == [("49", "20"), ("49", "20"), ("49", "20")]
        assert prices(adjustment="all", adjustment_as_of="2024-01-09") == [
            ("50", "20"),
            ("50", "20"),
            ("49", "20"),
        ]


def test_readiness_is_503_when_k2_cannot_serve(lake: EmbeddedLake) -> None:
    """With its query engine gone, K2 says so: 503 and the failing dependency named; liveness stays 200."""
    with _client(lake) as api:
        api.app.state.engine.close()  # type: ignore[attr-defined]
        response = api.get("/health/ready")
        assert api.get("/health").status_code == 200
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert {d["name"]: d["status"] for d in body["dependencies"]}["duckdb"] == "failing"
