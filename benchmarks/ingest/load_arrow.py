"""The ingest limit, in its own process: every tick CSV of an ASX-format directory read with
``pyarrow.csv.read_csv`` (types inferred, multithreaded) and written with
``pyarrow.parquet.write_table(..., compression="zstd")``, one Parquet file per CSV file.

    python -m benchmarks.ingest.load_arrow SOURCE_DIR OUT_DIR
    python -m benchmarks.ingest.load_arrow --rewrite LAKE_DIR OUT_DIR

With ``--rewrite`` it measures bytes instead of speed: every data file of a K2 lake is read back
and written again with plain ``write_table(..., compression="zstd")`` (pyarrow's defaults: a
dictionary for every column, row groups of up to 1Mi rows), so K2's bytes can be set beside
plain pyarrow's for exactly the same rows and columns. It also reports what ``message_id``
takes in each.
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmarks.common import fresh_dir, tree_bytes
from benchmarks.measure import emit, peak_rss_bytes

COLUMNS = {"trades": 7, "quotes": 6}
REWRITE_THREADS = 2
MESSAGE_ID = "message_id"


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


def column_bytes(path: Path, column: str) -> int:
    """Compressed bytes of top-level ``column`` in the Parquet file at ``path``."""
    metadata = pq.read_metadata(path)
    return sum(
        metadata.row_group(g).column(c).total_compressed_size
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
        if metadata.row_group(g).column(c).path_in_schema.split(".")[0] == column
    )


def rewrite(lake: Path, out: Path) -> dict[str, int]:
    """Write every data file of ``lake`` again with plain ``write_table(zstd)`` into ``out`` (removed
    afterwards); the two sizes.
    """
    files = sorted((lake / "warehouse").rglob("*.parquet"))

    def one(numbered: tuple[int, Path]) -> tuple[int, int, int]:
        number, path = numbered
        table = pq.read_table(path)
        target = out / f"{number}.parquet"
        pq.write_table(table, target, compression="zstd")
        return table.num_rows, column_bytes(path, MESSAGE_ID), column_bytes(target, MESSAGE_ID)

    with ThreadPoolExecutor(max_workers=REWRITE_THREADS) as pool:
        done = list(pool.map(one, enumerate(files)))
    result = {
        "files": len(files),
        "rows": sum(rows for rows, _, _ in done),
        "k2_bytes": sum(path.stat().st_size for path in files),
        "plain_bytes": tree_bytes(out, "*.parquet"),
        "k2_message_id_bytes": sum(k2 for _, k2, _ in done),
        "plain_message_id_bytes": sum(plain for _, _, plain in done),
    }
    shutil.rmtree(out)  # only their size was wanted
    return result


def main() -> None:
    """Run the conversion (or the rewrite) and report it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rewrite", action="store_true", help="SOURCE is a K2 lake: rewrite its data files")
    args = parser.parse_args()
    out = fresh_dir(args.out)
    if args.rewrite:
        emit({**rewrite(args.source, out)})
        return
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
