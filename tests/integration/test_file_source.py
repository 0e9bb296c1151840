"""`k2 ingest file`: CSV and Parquet files that already carry v2 columns."""

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from k2.domain.identity import message_id
from k2.errors import InvalidInputError
from k2.ingest.rejects import RejectFile
from k2.ingest.sources.file import FileSource
from k2.query import TickQuery, quotes, trades
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, tzinfo=UTC)

CSV = (
    "trade_id,symbol,exchange,timestamp,price,quantity,side,trade_conditions,vendor_data\n"
    "BINANCE-1,BTCUSDT,binance,2024-01-08T00:00:00.123456Z,42000.12345678,0.00100000,buy,[],"
    '"{""m"": ""true""}"\n'
    "BINANCE-2,BTCUSDT,BINANCE,2024-01-08T11:00:00.5+11:00,42001,0.5,SELL,[],\n"
    "BINANCE-3,BTCUSDT,BINANCE,not-a-time,1,1,BUY,[],\n"
    "BINANCE-4,BTCUSDT,BINANCE,2024-01-08T00:00:01Z,-5,1,BUY,[],\n"
    "BINANCE-5,BTCUSDT,BINANCE,2024-01-08T00:00:02Z,1,1,SIDEWAYS,[],\n"
)


def _load_file(lake: EmbeddedLake, path: Path) -> int:
    report = lake.load(lambda rejects, rows, at: FileSource(path, rejects, batch_rows=rows, ingested_at=at))
    return report.rows_written


def test_csv_with_v2_columns_loads_good_rows_and_rejects_bad_ones(lake: EmbeddedLake, tmp_path: Path) -> None:
    """Crypto precision, offsets, JSON maps load; bad time, negative price, unknown side are rejected."""
    path = tmp_path / "trades.csv"
    path.write_text(CSV)
    assert _load_file(lake, path) == 2
    rows = trades(lake.engine, TickQuery(symbols=("BTCUSDT",))).rows.to_pylist()
    assert [r["price"] for r in rows] == [Decimal("42000.12345678"), Decimal(42001)]
    assert rows[0]["message_id"] == message_id("BINANCE", "trade", "BINANCE-1")
    assert (rows[0]["asset_class"], rows[0]["currency"], rows[0]["side"]) == ("crypto", "USDT", "BUY")
    assert dict(rows[0]["vendor_data"]) == {"m": "true"}
    assert rows[1]["timestamp"] == datetime(2024, 1, 8, 0, 0, 0, 500000, tzinfo=UTC)
    (reject_file,) = lake.settings.reject_dir.glob("*.rejects.csv")
    with reject_file.open(newline="") as handle:
        rejected = {(r["line"], r["reason"]) for r in csv.DictReader(handle)}
    assert rejected == {
        ("4", "missing or invalid timestamp"),
        ("5", "negative price"),
        ("6", "missing or invalid side"),
    }


def test_parquet_round_trip_is_idempotent(lake: EmbeddedLake, tmp_path: Path) -> None:
    """A Parquet export of v2 trades loads once; loading it again adds nothing."""
    path = tmp_path / "trades.parquet"
    pq.write_table(make_trade_rows([trade_row("BHP", NOW, "1.5", sequence=i) for i in range(1, 6)]), path)
    assert _load_file(lake, path) == 5
    assert _load_file(lake, path) == 0
    assert trades(lake.engine, TickQuery()).rows.num_rows == 5


def test_quotes_file_is_recognised_by_its_columns(lake: EmbeddedLake, tmp_path: Path) -> None:
    """A file with quote_id goes to the quotes table; a missing side price is allowed."""
    path = tmp_path / "quotes.csv"
    path.write_text(
        "quote_id,symbol,exchange,timestamp,bid_price,bid_quantity,ask_price,ask_quantity\n"
        "ASX-1,BHP,ASX,2014-03-10T00:00:00Z,36.5,100,,0\n"
    )
    assert _load_file(lake, path) == 1
    (row,) = quotes(lake.engine, TickQuery()).rows.to_pylist()
    assert (row["bid_price"], row["ask_price"]) == (Decimal("36.5"), None)


def test_files_without_required_columns_are_refused(tmp_path: Path) -> None:
    """Missing required columns or unknown columns stop the load before anything is written."""
    path = tmp_path / "t.csv"
    path.write_text("trade_id,symbol\nX-1,BHP\n")
    with pytest.raises(InvalidInputError, match="missing required columns"):
        FileSource(path, RejectFile(tmp_path / "r.csv"), batch_rows=10, ingested_at=NOW)
    path.write_text("trade_id,symbol,exchange,timestamp,price,quantity,colour\n")
    with pytest.raises(InvalidInputError, match="unknown columns: colour"):
        FileSource(path, RejectFile(tmp_path / "r.csv"), batch_rows=10, ingested_at=NOW)
