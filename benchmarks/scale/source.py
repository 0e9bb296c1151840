"""The scale benchmark's input: the trades of one synthetic market, generated once into Parquet
files of ``FILE_ROWS`` rows each in K2's trades schema, in the generator's order (day by day, a
file per 20 symbol-days), and reused by later runs. A size of N trades is the first N / ``FILE_ROWS``
files, so every size is a prefix of the largest and each load and its limit read the same rows.

Generating is left out of every clock: the loads time K2 (or plain pyarrow) writing rows that are
already in memory, batch by batch, never the numpy generator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import DATA_DIR, fresh_dir, log
from benchmarks.scale.queries import Contents
from benchmarks.synthetic_data import MARKER
from k2.ingest.sources.base import SourceBatch
from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.lake.tables import TRADES

#: Trades per source file: one load batch.
FILE_ROWS = 1_000_000
#: The market every size is a prefix of; 100 symbols x 20 days x 50,000 trades = 100M trades.
SYMBOLS = 100
DAYS = 20
TRADES_PER_DAY = 50_000
INGESTED_AT = datetime(2024, 2, 5, tzinfo=UTC)


def market() -> SyntheticMarket:
    """The synthetic market of the largest size (seeded: the same rows every time)."""
    return SyntheticMarket(symbols=SYMBOLS, days=DAYS, trades_per_day=TRADES_PER_DAY)


def contents(rows: int) -> Contents:
    """The symbols and days the first ``rows`` trades cover (whole symbol-days, day by day)."""
    whole = market()
    days = -(-rows // (SYMBOLS * TRADES_PER_DAY))
    return Contents(whole.symbols[: min(SYMBOLS, rows // TRADES_PER_DAY)], whole.days[:days], whole.venue)


def source_dir(rows: int) -> Path:
    """Where the source files of at least ``rows`` trades live."""
    return DATA_DIR / "scale" / f"source-s{SYMBOLS}-d{DAYS}-t{TRADES_PER_DAY}-upto{rows // FILE_ROWS}"


def ensure_source(rows: int) -> tuple[Path, float | None]:
    """The first ``rows`` trades of :func:`market` as Parquet files, written unless already there.

    Returns:
        The directory and the seconds spent writing it (None when reused).
    """
    largest = market().total_trades
    if rows > largest or rows % FILE_ROWS:
        raise ValueError(f"sizes are whole multiples of {FILE_ROWS:,} up to {largest:,} trades")
    found = sorted(DATA_DIR.glob("scale/source-*"))
    for root in found:
        if (root / MARKER).is_file() and json.loads((root / MARKER).read_text())["rows"] >= rows:
            return root, None
    root = fresh_dir(source_dir(rows))
    log(f"generating {rows:,} synthetic trades into {root.name} (once; its quotes are dropped)")
    started = time.perf_counter()
    source = SyntheticSource(market(), batch_rows=FILE_ROWS, ingested_at=INGESTED_AT)
    written = 0
    for batch in source.batches():
        if batch.table is not TRADES:
            continue
        pq.write_table(batch.rows, root / f"part-{written // FILE_ROWS:05d}.parquet", compression="zstd")
        written += batch.rows.num_rows
        if written >= rows:
            break
    seconds = time.perf_counter() - started
    (root / MARKER).write_text(json.dumps({"rows": written, "seconds": seconds}))
    return root, seconds


def files(root: Path, rows: int) -> list[Path]:
    """The source files holding the first ``rows`` trades."""
    return sorted(root.glob("part-*.parquet"))[: rows // FILE_ROWS]


def tables(root: Path, rows: int) -> Iterator[pa.Table]:
    """The first ``rows`` trades, one file's table at a time."""
    for path in files(root, rows):
        yield pq.read_table(path)


class ScaleSource:
    """The first ``rows`` source trades as a K2 :class:`~k2.ingest.sources.base.Source`: each file
    one batch of v2 rows, read ahead of the loader by its run-ahead thread.
    """

    kind = "synthetic"

    def __init__(self, root: Path, rows: int) -> None:
        self._root = root
        self._rows = rows

    @property
    def description(self) -> str:
        """What is loaded."""
        return f"scale:{self._root.name}:rows={self._rows}"

    @property
    def total_bytes(self) -> int | None:
        """Unknown: the files are decoded, not read as input bytes."""
        return None

    def batches(self) -> Iterator[SourceBatch]:
        """One batch per source file."""
        for table in tables(self._root, self._rows):
            yield SourceBatch(TRADES, table, table.num_rows, 0, unique_ids=True)
