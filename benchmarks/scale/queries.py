"""Query latency on the scale benchmark's largest lake, at concurrency 1 and 8.

Three reads, each pick drawn at random (seeded) from the lake's symbols, days and session hours:
a page of one symbol's trades in one hour, one symbol's 1-minute bars (with VWAP) over one day,
and the daily bar (OHLCV, VWAP) of every symbol on one day. Concurrency 1 is one caller asking in
turn after unmeasured warm-up reads; concurrency 8 is eight threads of this process sharing the
one reader (as the API's worker threads share its engine), each asking in turn, all started
together; its rate is requests answered over the series' wall time.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Protocol

import pyarrow as pa

from benchmarks.common import log, percentile, timed_ms
from benchmarks.picks import session_hours
from k2.domain.bars import Interval
from k2.ingest.sources.synthetic import SyntheticMarket
from k2.query import BarQuery, Page, QueryEngine, TickQuery, bars, trades

PAGE_ROWS = 5000
CLIENTS = 8
MINUTE = Interval.parse("1m")
DAY = Interval.parse("1d")
SEED = 11


class Reads(Protocol):
    """What answers the benchmark's reads (the shape of the API's readers)."""

    def trades(self, query: TickQuery) -> Page:
        """One page of trades."""
        ...

    def bars(self, query: BarQuery) -> pa.Table:
        """OHLCV bars with VWAP."""
        ...


@dataclass(frozen=True, slots=True)
class InProcess:
    """K2's DuckDB read path in this process."""

    engine: QueryEngine

    def trades(self, query: TickQuery) -> Page:
        """``k2.query.trades``."""
        return trades(self.engine, query)

    def bars(self, query: BarQuery) -> pa.Table:
        """``k2.query.bars``."""
        return bars(self.engine, query)


#: One read: a reader and a random source in, the rows answered out.
Read = Callable[[Reads, random.Random], int]


def _day_bounds(market: SyntheticMarket, rng: random.Random) -> tuple[datetime, datetime]:
    day = rng.choice(market.days)
    start = datetime.combine(day, clock(0), tzinfo=market.venue.zone).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), clock(0), tzinfo=market.venue.zone).astimezone(
        UTC
    )


def reads(market: SyntheticMarket) -> dict[str, Read]:
    """The three reads over ``market``'s symbols, days and session hours, by label."""

    def page(reader: Reads, rng: random.Random) -> int:
        start = rng.choice(session_hours(rng.choice(market.days), market.venue))
        query = TickQuery(
            symbols=(rng.choice(market.symbols),),
            start=start,
            end=start + timedelta(hours=1),
            limit=PAGE_ROWS,
        )
        return int(reader.trades(query).rows.num_rows)

    def symbol_day(reader: Reads, rng: random.Random) -> int:
        start, end = _day_bounds(market, rng)
        return int(
            reader.bars(
                BarQuery(MINUTE, symbols=(rng.choice(market.symbols),), start=start, end=end)
            ).num_rows
        )

    def all_symbols(reader: Reads, rng: random.Random) -> int:
        start, end = _day_bounds(market, rng)
        return int(reader.bars(BarQuery(DAY, start=start, end=end)).num_rows)

    return {
        f"Trades page: 1 symbol x 1 hour, first {PAGE_ROWS:,} rows": page,
        "1-minute bars with VWAP: 1 symbol x 1 day": symbol_day,
        f"Daily bar with VWAP of every symbol ({len(market.symbols)}): 1 day": all_symbols,
    }


@dataclass(frozen=True, slots=True)
class Latencies:
    """One series: its latencies (ms), wall time and the rows answered."""

    clients: int
    ms: list[float]
    seconds: float
    rows: int

    @property
    def p50(self) -> float:
        return percentile(self.ms, 0.5)

    @property
    def p99(self) -> float:
        return percentile(self.ms, 0.99)

    @property
    def rate(self) -> float:
        """Requests answered per second of the series' wall time."""
        return len(self.ms) / self.seconds


def series(reader: Reads, read: Read, clients: int, runs: int, warmup: int) -> Latencies:
    """``clients`` threads each asking ``runs`` times (after ``warmup`` unmeasured reads by one)."""
    rng = random.Random(SEED)
    for _ in range(warmup):
        read(reader, rng)
    times: list[list[float]] = [[] for _ in range(clients)]
    answered = [0] * clients
    failures: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        mine = random.Random(SEED + 1 + number)
        start.wait()
        try:
            for _ in range(runs):
                rows, ms = timed_ms(lambda: read(reader, mine))
                times[number].append(ms)
                answered[number] += rows
        except BaseException as exc:  # reported by the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise failures[0]
    return Latencies(clients, [ms for mine in times for ms in mine], seconds, sum(answered))


def measure(
    reader: Reads, market: SyntheticMarket, runs: int, warmup: int, what: str
) -> dict[str, list[Latencies]]:
    """Every read at concurrency 1 (``runs`` reads) and ``CLIENTS`` (``runs`` // 2 each), by label."""
    found: dict[str, list[Latencies]] = {}
    for label, read in reads(market).items():
        log(f"{what}: {label}")
        found[label] = [
            series(reader, read, 1, runs, warmup),
            series(reader, read, CLIENTS, max(1, runs // 2), 0),
        ]
    return found
