"""Bars against an independent aggregation of the same trades."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k2.domain.bars import Interval
from k2.lake.tables import TRADES
from k2.query import BarQuery, bars
from k2.query.errors import InvalidQueryError
from k2.testing import EmbeddedLake, make_trade_rows, trade_row

pytestmark = pytest.mark.integration

SYDNEY = ZoneInfo("Australia/Sydney")
T0 = datetime(2014, 3, 9, 22, 0, tzinfo=UTC)  # 09:00 in Sydney, 10 March 2014

trade = st.tuples(
    st.integers(min_value=0, max_value=3 * 86_400_000),  # ms after T0, across three local days
    st.sampled_from(["BHP", "RIO"]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(500), places=3),
    st.integers(min_value=1, max_value=100_000),
)


def _expected(ticks: list[tuple[int, str, Decimal, int]], interval: Interval) -> list[tuple[object, ...]]:
    buckets: dict[tuple[str, datetime], list[tuple[datetime, int, Decimal, int]]] = defaultdict(list)
    for seq, (ms, symbol, price, qty) in enumerate(ticks):
        when = T0 + timedelta(milliseconds=ms)
        local = when.astimezone(SYDNEY).replace(tzinfo=None)
        if interval.is_daily:
            start_local = datetime(local.year, local.month, local.day)
        else:
            since = int((local - datetime(2000, 1, 1)).total_seconds())
            start_local = datetime(2000, 1, 1) + timedelta(seconds=since - since % interval.seconds)
        buckets[(symbol, start_local.replace(tzinfo=SYDNEY).astimezone(UTC))].append((when, seq, price, qty))
    out: list[tuple[object, ...]] = []
    for (symbol, start), rows in sorted(buckets.items()):
        rows.sort(key=lambda r: (r[0], r[1]))
        volume = sum((Decimal(r[3]) for r in rows), Decimal(0))
        notional = sum((r[2] * r[3] for r in rows), Decimal(0))
        vwap = (notional / volume).quantize(Decimal("1e-8"))
        out.append(
            (
                symbol,
                start,
                rows[0][2],
                max(r[2] for r in rows),
                min(r[2] for r in rows),
                rows[-1][2],
                volume,
                len(rows),
                vwap,
            )
        )
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ticks=st.lists(trade, min_size=1, max_size=60), interval=st.sampled_from(["1m", "15m", "1h", "2h", "1d"])
)
def test_bars_equal_an_independent_aggregation(
    tmp_path_factory: pytest.TempPathFactory, ticks: list[tuple[int, str, Decimal, int]], interval: str
) -> None:
    """OHLCV, count and VWAP per venue-local bucket equal a straightforward Python computation;
    open and close follow (timestamp, sequence) so same-time prints keep their order."""
    lake = EmbeddedLake.create(Path(tmp_path_factory.mktemp("bars")) / "lake")
    rows = [
        trade_row(sym, T0 + timedelta(milliseconds=ms), str(price), str(qty), sequence=i)
        for i, (ms, sym, price, qty) in enumerate(ticks)
    ]
    lake.writer.append(TRADES, make_trade_rows(rows), {"k2.load.id": "prop"})
    got = bars(lake.engine, BarQuery(Interval.parse(interval)))
    names = ("symbol", "interval_start", "open", "high", "low", "close", "volume", "trade_count")
    records = got.to_pylist()
    expected = _expected(ticks, Interval.parse(interval))
    assert [tuple(r[n] for n in names) for r in records] == [e[:-1] for e in expected]
    for record, want in zip(records, expected, strict=True):
        vwap, wanted = record["vwap"], want[-1]
        assert isinstance(vwap, Decimal)
        assert isinstance(wanted, Decimal)
        assert abs(vwap - wanted) <= Decimal("1e-8")
    lake.close()


def test_intervals_that_straddle_hours_are_refused(lake: EmbeddedLake) -> None:
    """A 90-minute bar cannot be built from hourly pieces and is a clear input error."""
    lake.writer.append(TRADES, make_trade_rows([trade_row("BHP", T0)]), {"k2.load.id": "t"})
    with pytest.raises(InvalidQueryError, match="whole hours"):
        bars(lake.engine, BarQuery(Interval.parse("90m")))
