"""Query latency on the scale benchmark's lakes, at concurrency 1 and 8, through K2's readers
(``k2.query.reader``: DuckDB in process, or Trino).

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
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from benchmarks.common import log, percentile, timed_ms
from benchmarks.picks import session_hours
from k2.domain.bars import Interval
from k2.domain.venues import Venue
from k2.query import BarQuery, TickQuery
from k2.query.reader import Reader

PAGE_ROWS = 5000
CLIENTS = 8
MINUTE = Interval.parse("1m")
DAY = Interval.parse("1d")
SEED = 11


#: One read: a reader and a random source in, the rows answered out.
Read = Callable[[Reader, random.Random], int]


@dataclass(frozen=True, slots=True)
class Contents:
    """What a lake holds: its symbols and trading days, at its venue."""

    symbols: list[str]
    days: list[date]
    venue: Venue

    def day(self, rng: random.Random) -> tuple[datetime, datetime]:
        """The UTC bounds of a random venue-local day of the lake."""
        day = rng.choice(self.days)
        zone = self.venue.zone
        start = datetime.combine(day, clock(0), tzinfo=zone).astimezone(UTC)
        return start, datetime.combine(day + timedelta(days=1), clock(0), tzinfo=zone).astimezone(UTC)

    def hour(self, rng: random.Random) -> tuple[datetime, datetime]:
        """The UTC bounds of a random whole hour of a trading session of the lake."""
        start = rng.choice(session_hours(rng.choice(self.days), self.venue))
        return start, start + timedelta(hours=1)


def reads(lake: Contents) -> dict[str, Read]:
    """The three reads over the lake's symbols, days and session hours, by label."""

    def page(reader: Reader, rng: random.Random) -> int:
        start, end = lake.hour(rng)
        query = TickQuery(symbols=(rng.choice(lake.symbols),), start=start, end=end, limit=PAGE_ROWS)
        return int(reader.trades(query).rows.num_rows)

    def symbol_day(reader: Reader, rng: random.Random) -> int:
        start, end = lake.day(rng)
        query = BarQuery(MINUTE, symbols=(rng.choice(lake.symbols),), start=start, end=end)
        return int(reader.bars(query).num_rows)

    def all_symbols(reader: Reader, rng: random.Random) -> int:
        start, end = lake.day(rng)
        return int(reader.bars(BarQuery(DAY, start=start, end=end)).num_rows)

    return {
        f"Trades page: 1 symbol x 1 hour, first {PAGE_ROWS:,} rows": page,
        "1-minute bars with VWAP: 1 symbol x 1 day": symbol_day,
        "Daily bar with VWAP of every symbol: 1 day": all_symbols,
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


def series(reader: Reader, read: Read, clients: int, runs: int, warmup: int) -> Latencies:
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


def measure(reader: Reader, lake: Contents, runs: int, warmup: int, what: str) -> dict[str, list[Latencies]]:
    """Every read at concurrency 1 (``runs`` reads) and ``CLIENTS`` (``runs`` // 4 each), by label."""
    found: dict[str, list[Latencies]] = {}
    for label, read in reads(lake).items():
        log(f"{what}: {label}")
        found[label] = [
            series(reader, read, 1, runs, warmup),
            series(reader, read, CLIENTS, max(1, runs // 4), 0),
        ]
    return found
