"""The synthetic market of the large benchmarks: its ASX-format CSV directory and its lake,
both kept under ``benchmarks/.data`` and reused by later runs at the same sizes.

A directory counts only once its ``.complete`` marker is written, so an interrupted run
regenerates it. The lake marker records the exchange the lake's rows carry (``ASX`` when loaded
from the CSV files, ``SYN`` when loaded straight from the generator).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.common import DATA_DIR, Sizes, fresh_dir, log
from k2.ingest.sources.synthetic import SyntheticMarket

MARKER = ".complete"


def market(sizes: Sizes) -> SyntheticMarket:
    """The market at these sizes (seeded: the same rows every time)."""
    return SyntheticMarket(symbols=sizes.symbols, days=sizes.days, trades_per_day=sizes.trades_per_day)


def csv_dir(sizes: Sizes) -> Path:
    """Where the market's ASX-format directory lives."""
    return DATA_DIR / f"synthetic-asx-{sizes.tag}"


def ensure_csv(sizes: Sizes) -> tuple[Path, float | None]:
    """The market as an ASX-format directory, written unless already there.

    Returns:
        The directory and the seconds spent writing it (None when reused).
    """
    root = csv_dir(sizes)
    if (root / MARKER).is_file():
        return root, None
    log(f"writing {sizes.trades:,} trades and as many quotes as ASX CSV to {root.name} (once)")
    started = time.perf_counter()
    market(sizes).write_asx_directory(fresh_dir(root))
    seconds = time.perf_counter() - started
    (root / MARKER).write_text(json.dumps({"seconds": seconds}))
    return root, seconds


def lake_dir(sizes: Sizes) -> Path:
    """Where the market's lake lives."""
    return DATA_DIR / "lakes" / f"synthetic-{sizes.tag}"


def mark_lake(sizes: Sizes, exchange: str) -> None:
    """Mark the lake complete; its rows carry ``exchange``."""
    (lake_dir(sizes) / MARKER).write_text(json.dumps({"exchange": exchange}))


def lake_exchange(sizes: Sizes) -> str | None:
    """The exchange of the complete lake at these sizes; None when there is none."""
    marker = lake_dir(sizes) / MARKER
    if not marker.is_file():
        return None
    return str(json.loads(marker.read_text())["exchange"])
