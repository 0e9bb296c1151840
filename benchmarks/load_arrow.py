"""The ingest limit, in its own process: every tick CSV of an ASX-format directory read with
``pyarrow.csv.read_csv`` (types inferred, multithreaded) and written with
``pyarrow.parquet.write_table(..., compression="zstd")``, one Parquet file per CSV file.

    python -m benchmarks.load_arrow SOURCE_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmarks.common import fresh_dir, tree_bytes
from benchmarks.measure import emit, peak_rss_bytes

COLUMNS = {"trades": 7, "quotes": 6}


def convert(source: Path, out: Path) -> tuple[int, int]:
    """Convert the tick files; return rows and input bytes."""
    rows = 0
    read = 0
    for kind, width in COLUMNS.items():
        names = [f"f{i}" for i in range(width)]
        for path in sorted((source / kind).glob("*.csv")):
            table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=names))
            pq.write_table(table, out / f"{kind}-{path.stem}.parquet", compression="zstd")
            rows += table.num_rows
            read += path.stat().st_size
    return rows, read


def main() -> None:
    """Run the conversion and report it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    out = fresh_dir(args.out)
    rss_after_imports = peak_rss_bytes()
    started = time.perf_counter()
    rows, read = convert(args.source, out)
    seconds = time.perf_counter() - started
    emit(
        {
            "rows": rows,
            "seconds": seconds,
            "input_bytes": read,
            "output_bytes": tree_bytes(out, "*.parquet"),
            "rss_after_imports": rss_after_imports,
        }
    )


if __name__ == "__main__":
    main()
