"""One K2 load into a fresh lake, in its own process so its peak RSS is its own.

    python -m benchmarks.ingest.load_k2 LAKE_DIR --asx SOURCE_DIR [--profile FILE]
    python -m benchmarks.ingest.load_k2 LAKE_DIR --synthetic SYMBOLS DAYS TRADES_PER_DAY

The clock runs from opening the catalog to the end of ``Loader.run``: the whole load, without
the interpreter start and imports (which the limit process does not pay for either).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from benchmarks.common import fresh_dir, tree_bytes
from benchmarks.measure import emit, peak_rss_bytes
from k2.ingest.loader import Loader, new_load_id, reject_file_for
from k2.ingest.report import IngestReport
from k2.ingest.sources.asx import AsxSource
from k2.ingest.sources.base import Source
from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.lake.catalog import open_catalog
from k2.lake.tables import MARKET_TABLES
from k2.lake.writer import LakeWriter
from k2.obs.logging import configure_logging
from k2.settings import K2Settings, LogLevel, ObsSettings


def quiet() -> None:
    """Warnings-level logs only."""
    configure_logging(ObsSettings(log_level=LogLevel.WARNING, log_format="console"))


class ThreadProfiles:
    """cProfile of this thread and of every thread started while enabled (cProfile alone sees
    only the thread that enabled it; a source may run on a worker thread).
    """

    def __init__(self) -> None:
        self._profiles = [cProfile.Profile()]
        self._lock = threading.Lock()

    def _start_thread(self, frame: FrameType, event: str, arg: object) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()

    def enable(self) -> None:
        """Profile this thread and the threads it starts from now on."""
        threading.setprofile(self._start_thread)
        self._profiles[0].enable()

    def disable(self) -> None:
        """Stop profiling this thread and stop profiling new threads."""
        self._profiles[0].disable()
        threading.setprofile(None)

    def dump(self, path: Path) -> None:
        """Write the merged statistics of all threads to ``path``."""
        with self._lock:
            first, *others = self._profiles
        stats = pstats.Stats(first)
        for other in others:
            stats.add(other)
        stats.dump_stats(path)


def load(settings: K2Settings, args: argparse.Namespace) -> IngestReport:
    """Open the lake and run the load ``args`` names."""
    catalog = open_catalog(settings)
    writer = LakeWriter(catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    load_id = new_load_id()
    rejects = reject_file_for(settings.reject_dir, load_id)
    ingested_at = datetime.now(UTC)
    source: Source
    if args.asx is not None:
        source = AsxSource(
            args.asx, rejects, batch_rows=settings.ingest.read_batch_rows, ingested_at=ingested_at
        )
    else:
        symbols, days, trades_per_day = args.synthetic
        market = SyntheticMarket(symbols=symbols, days=days, trades_per_day=trades_per_day)
        source = SyntheticSource(market, batch_rows=settings.ingest.read_batch_rows, ingested_at=ingested_at)
    return Loader(writer, commit_rows=settings.ingest.commit_rows).run(source, rejects, load_id)


def main() -> None:
    """Run one load and report it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lake", type=Path)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--asx", type=Path, help="an ASX-format directory")
    which.add_argument("--synthetic", type=int, nargs=3, metavar=("SYMBOLS", "DAYS", "TRADES_PER_DAY"))
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the load here")
    args = parser.parse_args()
    quiet()
    settings = K2Settings(data_dir=fresh_dir(args.lake))
    rss_after_imports = peak_rss_bytes()
    profiler = ThreadProfiles() if args.profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = load(settings, args)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.dump(args.profile)
    ticks = [report.counts(t.name) for t in MARKET_TABLES]
    emit(
        {
            "rows": sum(c.rows_read for c in ticks),
            "seconds": seconds,
            "loader_seconds": report.elapsed_seconds,
            "rows_written": sum(c.rows_written for c in ticks),
            "rows_rejected": report.rows_rejected,
            "commits": sum(c.commits for c in ticks),
            "output_bytes": tree_bytes(settings.data_dir / "warehouse", "*.parquet"),
            "rss_after_imports": rss_after_imports,
            "read_batch_rows": settings.ingest.read_batch_rows,
            "commit_rows": settings.ingest.commit_rows,
        }
    )


if __name__ == "__main__":
    main()
