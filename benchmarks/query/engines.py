"""Latency of the same reads through DuckDB and through Trino, on a private platform.

    uv run --frozen python -m benchmarks.query.engines [--runs N]

Starts PostgreSQL, MinIO and Trino on free ports with data under ``.k2`` (installing Trino into
``K2_PLATFORM_HOME`` on first use), loads the ASX sample, then times each read through both
readers of :mod:`k2.query.reader` in process: a few warm-up calls, then ``--runs`` timed calls,
and prints a markdown table of p50 and p95 in milliseconds with the machine and date. Everything
it started is stopped and removed at the end. ``docs/trino.md`` quotes its output.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial

from benchmarks.common import ASX_SAMPLE, REPO_ROOT, log, percentile, timed_ms
from k2.domain.bars import Interval
from k2.obs.logging import configure_logging
from k2.platform.minio import Minio
from k2.platform.postgres import Postgres
from k2.platform.service import Service
from k2.platform.trino import Trino
from k2.query import BarQuery, TickQuery
from k2.query.reader import DuckDBReader, Reader
from k2.query.trino import TrinoReader
from k2.settings import LogLevel, ObsSettings
from k2.testing import EmbeddedLake
from k2.testing.platforms import on_free_ports, scratch_root

WARM_UP = 3
DAY_START = datetime(2014, 3, 11, 23, 0, tzinfo=UTC)
HOUR_END = datetime(2014, 3, 12, 0, 0, tzinfo=UTC)
WEEK = (datetime(2014, 3, 9, tzinfo=UTC), datetime(2014, 3, 15, tzinfo=UTC))


def reads() -> dict[str, Callable[[Reader], object]]:
    """The reads timed, by what they ask."""
    return {
        "trades page: BHP, one hour, 1000 rows": lambda r: r.trades(
            TickQuery(symbols=("BHP",), start=DAY_START, end=HOUR_END, limit=1000)
        ),
        "trades page: all symbols, newest 100": lambda r: r.trades(TickQuery(limit=100, descending=True)),
        "daily summary: BHP 2014-03-12 (VWAP)": lambda r: r.daily_summary("BHP", date(2014, 3, 12)),
        "1m bars: BHP and RIO, the week": lambda r: r.bars(
            BarQuery(Interval.parse("1m"), symbols=("BHP", "RIO"), start=WEEK[0], end=WEEK[1])
        ),
        "1h TWAP: RIO, the week": lambda r: r.twap(
            BarQuery(Interval.parse("1h"), symbols=("RIO",), start=WEEK[0], end=WEEK[1])
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print its table; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30, help="timed calls per read and engine")
    args = parser.parse_args(argv)
    configure_logging(ObsSettings(log_level=LogLevel.WARNING, log_format="console"))
    with scratch_root("bench-trino-", REPO_ROOT / ".k2") as root:
        settings = on_free_ports(root)
        services: list[Service] = [Postgres(settings), Minio(settings), Trino(settings)]
        try:
            for service in services:
                log(f"starting {service.name}")
                service.start()
            lake = EmbeddedLake.open(settings)
            try:
                lake.load_asx(ASX_SAMPLE)
                readers: list[Reader] = [
                    DuckDBReader(lake.engine),
                    TrinoReader(lake.engine, settings.trino_url, settings.lake.catalog_name),
                ]
                rows = []
                for name, read in reads().items():
                    cells = [name]
                    for reader in readers:
                        for _ in range(WARM_UP):
                            read(reader)
                        times = [timed_ms(partial(read, reader))[1] for _ in range(args.runs)]
                        cells += [f"{percentile(times, 0.5):.1f}", f"{percentile(times, 0.95):.1f}"]
                    rows.append(cells)
            finally:
                lake.close()
        finally:
            for service in reversed(services):
                service.stop()
    print(
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `python -m benchmarks.query.engines --runs {args.runs}` "
        f"on {platform.node()} ({os.cpu_count()} cores, {platform.platform()}); ASX sample, "
        f"{WARM_UP} warm-up calls, then {args.runs} timed calls each, in process (no HTTP).\n"
    )
    print("| read | DuckDB p50 ms | DuckDB p95 ms | Trino p50 ms | Trino p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
