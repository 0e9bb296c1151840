"""The whole ASX sample loaded into an embedded lake, checked against the CSV files themselves."""

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from k2.query import TickQuery, daily_summary, quotes, symbols, trades
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration

SYMBOLS = {"3153": "MWR", "7078": "BHP", "7181": "DVN", "7458": "RIO"}
EXPECTED_ROWS = {
    "trades": {"MWR": 11, "BHP": 91_631, "DVN": 232, "RIO": 108_671},
    "quotes": {"MWR": 60, "BHP": 77_849, "DVN": 549, "RIO": 91_171},
}


@dataclass
class Day:
    """Independent daily aggregates, computed row by row from a CSV in file order."""

    prices: list[Decimal] = field(default_factory=list)
    volume: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)


def _csv_days(path: Path) -> dict[date, Day]:
    days: dict[date, Day] = defaultdict(Day)
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            day = datetime.strptime(row[0], "%m/%d/%Y").date()  # noqa: DTZ007 - a calendar day, no zone
            price, volume = Decimal(row[2]), Decimal(row[3])
            entry = days[day]
            entry.prices.append(price)
            entry.volume += volume
            entry.notional += price * volume
    return days


def _count(lake: EmbeddedLake, table: str, symbol: str) -> int:
    query = TickQuery(symbols=(symbol,), limit=lake.settings.query.max_limit)
    page = trades(lake.engine, query) if table == "trades" else quotes(lake.engine, query)
    assert page.next_cursor is None
    rows: int = page.rows.num_rows
    return rows


@pytest.mark.parametrize("table", ["trades", "quotes"])
def test_every_row_of_every_symbol_is_loaded(asx_lake: EmbeddedLake, table: str) -> None:
    """Each symbol has exactly as many rows as its CSV file has lines: nothing lost, nothing doubled."""
    assert {s: _count(asx_lake, table, s) for s in EXPECTED_ROWS[table]} == EXPECTED_ROWS[table]


def test_symbols_come_from_metadata(asx_lake: EmbeddedLake) -> None:
    """The four companies of company_info.csv are listed under ASX."""
    assert symbols(asx_lake.engine) == [("ASX", "BHP"), ("ASX", "DVN"), ("ASX", "MWR"), ("ASX", "RIO")]


@pytest.mark.parametrize("company", sorted(SYMBOLS))
def test_daily_ohlcv_and_vwap_match_the_csv(asx_lake: EmbeddedLake, asx_sample: Path, company: str) -> None:
    """For every trading day, open/high/low/close/volume/count/VWAP equal a row-by-row recomputation."""
    symbol = SYMBOLS[company]
    expected_days = _csv_days(asx_sample / "trades" / f"{company}.csv")
    for day, expected in expected_days.items():
        summary = daily_summary(asx_lake.engine, symbol, day, "ASX")
        assert summary is not None, (symbol, day)
        assert summary.open == expected.prices[0]
        assert summary.close == expected.prices[-1]
        assert summary.high == max(expected.prices)
        assert summary.low == min(expected.prices)
        assert summary.volume == expected.volume
        assert summary.trade_count == len(expected.prices)
        vwap = (expected.notional / expected.volume).quantize(Decimal("1e-8"))
        assert summary.vwap is not None
        assert abs(summary.vwap - vwap) <= Decimal("1e-8"), (symbol, day)


def test_days_without_trades_have_no_summary(asx_lake: EmbeddedLake) -> None:
    """MWR did not trade every day of the week; such days have no summary."""
    traded = set(
        _csv_days(
            Path(__file__).resolve().parents[2].parent
            / "shared"
            / "data"
            / "asx-sample"
            / "trades"
            / "3153.csv"
        )
    )
    week = {date(2014, 3, d) for d in range(10, 15)}
    for day in week - traded:
        assert daily_summary(asx_lake.engine, "MWR", day, "ASX") is None


def test_reloading_the_same_files_adds_nothing(tmp_path: Path, asx_sample: Path) -> None:
    """A second load of the sample writes no row and reports every tick as a duplicate."""
    lake = EmbeddedLake.create(tmp_path / "lake")
    first = lake.load_asx(asx_sample)
    second = lake.load_asx(asx_sample)
    ticks = sum(sum(v.values()) for v in EXPECTED_ROWS.values())
    assert first.tables["trades"].rows_written + first.tables["quotes"].rows_written == ticks
    assert second.tables["trades"].rows_written == second.tables["quotes"].rows_written == 0
    assert second.duplicates_skipped == ticks
    assert _count(lake, "trades", "BHP") == EXPECTED_ROWS["trades"]["BHP"]
    assert first.rows_rejected == 0
