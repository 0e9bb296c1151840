"""Synthetic ticks that look like an equities market: several symbols, random-walk prices
with a spread, prints only during the venue's trading session on weekdays, local wall clock
converted to UTC. Seeded, so the same parameters give the same rows (and the same ids).

The generator serves the demo, tests and benchmarks; it can also write its ticks as ASX-format
CSV files, which exercises the real file path.
"""

from __future__ import annotations

import csv
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from k2.domain.venues import Venue, venue
from k2.ingest.normalize import message_id_sql, message_key_sql
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import QUOTES, TRADES

TICK = 0.005
MICROS_PER_SECOND = 1_000_000


@dataclass(frozen=True, slots=True)
class SyntheticDay:
    """One symbol's ticks for one local day, as numpy columns; times are UTC microseconds."""

    symbol: str
    day: date
    trade_times: np.ndarray
    trade_prices: np.ndarray
    trade_sizes: np.ndarray
    trade_sides: np.ndarray
    quote_times: np.ndarray
    bids: np.ndarray
    asks: np.ndarray
    bid_sizes: np.ndarray
    ask_sizes: np.ndarray


def symbol_names(count: int) -> list[str]:
    """``count`` distinct three-letter tickers, the same for the same count."""
    letters = string.ascii_uppercase
    names = []
    for i in range(count):
        a, rest = divmod(i, 26 * 26)
        b, c = divmod(rest, 26)
        names.append(f"{letters[(a + 10) % 26]}{letters[(b * 7 + 3) % 26]}{letters[c]}")
    return names


def trading_days(start: date, days: int) -> list[date]:
    """The first ``days`` weekdays from ``start``."""
    result: list[date] = []
    current = start
    while len(result) < days:
        if current.weekday() < 5:
            result.append(current)
        current += timedelta(days=1)
    return result


class SyntheticMarket:
    """Generates ticks for ``symbols`` symbols over ``days`` weekdays."""

    def __init__(
        self,
        *,
        symbols: int,
        days: int,
        trades_per_day: int,
        start: date = date(2024, 1, 8),
        seed: int = 7,
        exchange: str = "SYN",
    ) -> None:
        self.venue: Venue = venue(exchange)
        self.symbols = symbol_names(symbols)
        self.days = trading_days(start, days)
        self.trades_per_day = trades_per_day
        self.seed = seed

    @property
    def total_trades(self) -> int:
        """Trades the market will generate."""
        return len(self.symbols) * len(self.days) * self.trades_per_day

    def generate(self) -> Iterator[SyntheticDay]:
        """Yield each symbol's days in order."""
        rng = np.random.default_rng(self.seed)
        opening = {s: round(float(rng.uniform(5, 150)) / TICK) * TICK for s in self.symbols}
        session = (
            datetime.combine(date.min, self.venue.session_close)
            - datetime.combine(date.min, self.venue.session_open)
        ).total_seconds()
        for day in self.days:
            local_open = datetime.combine(day, self.venue.session_open, tzinfo=self.venue.zone)
            open_us = (
                int((local_open.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
                * MICROS_PER_SECOND
            )
            for symbol in self.symbols:
                n = self.trades_per_day
                times = open_us + np.sort(rng.integers(0, int(session * MICROS_PER_SECOND), n))
                times = (times // 1000) * 1000  # millisecond clock, like the ASX feed
                steps = rng.choice([-1, 0, 0, 1], size=n) * TICK
                prices = np.maximum(opening[symbol] + np.cumsum(steps), TICK)
                opening[symbol] = float(prices[-1])
                sizes = np.maximum(1, np.round(rng.lognormal(5, 1.2, n))).astype(np.int64)
                sides = rng.integers(0, 2, n)
                spread = rng.integers(1, 4, n) * TICK
                quote_times = np.sort(np.maximum(times - rng.integers(1, 500, n) * 1000, open_us))
                bids = np.round((prices - spread / 2) / TICK) * TICK
                asks = np.maximum(bids + TICK, np.round((prices + spread / 2) / TICK) * TICK)
                yield SyntheticDay(
                    symbol,
                    day,
                    times,
                    np.round(prices, 3),
                    sizes,
                    sides,
                    quote_times,
                    np.round(bids, 3),
                    np.round(asks, 3),
                    rng.integers(1, 50, n) * 100,
                    rng.integers(1, 50, n) * 100,
                )

    def write_asx_directory(self, root: Path) -> Path:
        """Write the ticks as an ASX-format directory (``trades/``, ``quotes/``,
        ``reference-data/company_info.csv``) and return ``root``.
        """
        for sub in ("trades", "quotes", "reference-data"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        ids = {symbol: str(9000 + i) for i, symbol in enumerate(self.symbols)}
        with (root / "reference-data" / "company_info.csv").open("w", newline="") as f:
            out = csv.writer(f, lineterminator="\r\n")
            out.writerow(["company_id", "symbol", "company_name", "ISIN", "start_date", "end_date"])
            for symbol, cid in ids.items():
                out.writerow([cid, symbol, f"{symbol} SYNTHETIC LTD", f"AU0000{symbol}00", "01/01/2000", ""])
        handles = {}
        try:
            for symbol, cid in ids.items():
                handles[symbol] = (
                    (root / "trades" / f"{cid}.csv").open("w"),
                    (root / "quotes" / f"{cid}.csv").open("w"),
                )
            for d in self.generate():
                trades_f, quotes_f = handles[d.symbol]
                trades_f.write(
                    _asx_lines(
                        d.trade_times,
                        self.venue,
                        [
                            np.char.mod("%.3f", d.trade_prices),
                            d.trade_sizes.astype(str),
                            np.full(len(d.trade_times), "0"),
                            np.full(len(d.trade_times), ""),
                            np.full(len(d.trade_times), ""),
                        ],
                    )
                )
                quotes_f.write(
                    _asx_lines(
                        d.quote_times,
                        self.venue,
                        [
                            np.char.mod("%.3f", d.bids),
                            np.char.mod("%.3f", d.asks),
                            d.bid_sizes.astype(str),
                            d.ask_sizes.astype(str),
                        ],
                    )
                )
        finally:
            for trades_f, quotes_f in handles.values():
                trades_f.close()
                quotes_f.close()
        return root


def _asx_lines(times_us: np.ndarray, v: Venue, columns: list[np.ndarray]) -> str:
    """ASX-format lines (local MM/DD/YYYY,HH:MM:SS.fff, then ``columns``) for one local day."""
    offset = datetime.fromtimestamp(int(times_us[0]) / 1e6, tz=UTC).astimezone(v.zone).utcoffset()
    if offset is None:
        raise ValueError(f"{v.timezone} has no UTC offset")
    local = (times_us + int(offset.total_seconds()) * MICROS_PER_SECOND).astype("datetime64[us]")
    stamps = np.datetime_as_string(local, unit="ms").tolist()
    values = zip(*[c.tolist() for c in columns], strict=True)
    return "".join(
        f"{s[5:7]}/{s[8:10]}/{s[0:4]},{s[11:23]}," + ",".join(vals) + "\r\n"
        for s, vals in zip(stamps, values, strict=True)
    )


_TRADES_SQL = f"""
    SELECT {message_id_sql(message_key_sql("$exchange", "'trade'", "trade_id"))} AS message_id,
           trade_id, symbol, $exchange AS exchange, $asset_class AS asset_class,
           make_timestamptz(ts) AS timestamp, CAST(price AS DECIMAL(18, 8)) AS price,
           CAST(quantity AS DECIMAL(18, 8)) AS quantity, $currency AS currency,
           CASE WHEN side = 1 THEN 'BUY' ELSE 'SELL' END AS side, ['0'] AS trade_conditions,
           seq AS source_sequence, $ingested AS ingestion_timestamp, NULL::BIGINT AS platform_sequence,
           NULL::MAP(VARCHAR, VARCHAR) AS vendor_data
    FROM ticks
"""
_QUOTES_SQL = f"""
    SELECT {message_id_sql(message_key_sql("$exchange", "'quote'", "quote_id"))} AS message_id,
           quote_id, symbol, $exchange AS exchange, $asset_class AS asset_class,
           make_timestamptz(ts) AS timestamp, CAST(bid AS DECIMAL(18, 8)) AS bid_price,
           CAST(bid_size AS DECIMAL(18, 8)) AS bid_quantity, CAST(ask AS DECIMAL(18, 8)) AS ask_price,
           CAST(ask_size AS DECIMAL(18, 8)) AS ask_quantity, $currency AS currency,
           seq AS source_sequence, $ingested AS ingestion_timestamp, NULL::BIGINT AS platform_sequence,
           NULL::MAP(VARCHAR, VARCHAR) AS vendor_data
    FROM ticks
"""


class SyntheticSource:
    """A :class:`SyntheticMarket` loaded straight into the trades and quotes tables."""

    kind = "synthetic"

    def __init__(self, market: SyntheticMarket, *, batch_rows: int, ingested_at: datetime) -> None:
        self.market = market
        self._batch_rows = batch_rows
        self._ingested_at = ingested_at
        self._duck = duckdb.connect()
        self._duck.execute("SET TimeZone = 'UTC'")

    @property
    def description(self) -> str:
        """What is loaded."""
        m = self.market
        return (
            f"synthetic:{m.venue.code}:symbols={len(m.symbols)}:days={len(m.days)}:"
            f"trades_per_day={m.trades_per_day}:seed={m.seed}"
        )

    @property
    def total_bytes(self) -> int | None:
        """Unknown: nothing is read from disk."""
        return None

    def batches(self) -> Iterator[SourceBatch]:
        """Yield trades and quotes in batches of about ``batch_rows`` rows."""
        pending: list[SyntheticDay] = []
        for day in self.market.generate():
            pending.append(day)
            if sum(len(d.trade_times) for d in pending) >= self._batch_rows:
                yield from self._convert(pending)
                pending = []
        if pending:
            yield from self._convert(pending)

    def _convert(self, days: list[SyntheticDay]) -> Iterator[SourceBatch]:
        v = self.market.venue
        params = {
            "exchange": v.code,
            "asset_class": v.asset_class.value,
            "currency": v.currency,
            "ingested": self._ingested_at,
        }
        for spec, sql in ((TRADES, _TRADES_SQL), (QUOTES, _QUOTES_SQL)):
            ticks = pa.concat_tables([self._ticks(d, spec is TRADES) for d in days])
            self._duck.register("ticks", ticks)
            rows = self._duck.sql(sql, params=params).to_arrow_table().cast(spec.record.arrow_schema())
            yield SourceBatch(spec, rows, rows.num_rows, 0, unique_ids=True)

    def _ticks(self, d: SyntheticDay, trades: bool) -> pa.Table:
        n = len(d.trade_times)
        seq = np.arange(1, n + 1, dtype=np.int64)
        prefix = f"{self.market.venue.code}-{d.symbol}-{d.day:%Y%m%d}-"
        ids = pa.array([prefix + str(i) for i in range(1, n + 1)], pa.string())
        common = {"symbol": pa.array([d.symbol] * n, pa.string()), "seq": seq}
        if trades:
            return pa.table(
                {
                    "trade_id": ids,
                    **common,
                    "ts": d.trade_times,
                    "price": d.trade_prices,
                    "quantity": d.trade_sizes,
                    "side": d.trade_sides,
                }
            )
        return pa.table(
            {
                "quote_id": ids,
                **common,
                "ts": d.quote_times,
                "bid": d.bids,
                "ask": d.asks,
                "bid_size": d.bid_sizes,
                "ask_size": d.ask_sizes,
            }
        )
