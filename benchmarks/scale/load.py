"""One load of the scale benchmark, in its own process so its peak RSS is its own.

    python -m benchmarks.scale.load SOURCE_DIR ROWS SETTINGS_FILE [--limit]

K2: ``Loader`` + ``LakeWriter`` append the first ROWS source trades to a fresh trades table in the
lake SETTINGS_FILE (JSON) names (embedded: SQLite catalog and a local warehouse; platform: PostgreSQL
catalog and MinIO), a commit per ``commit_rows``, then refresh the 1-minute rollup, as
``k2 ingest`` does. The limit (``--limit``): pyarrow ``write_dataset`` of the same batches as zstd
Parquet into the same warehouse's ``plain-pyarrow`` folder, removed once measured. The clock runs
from opening the catalog (or the file system) to the last commit (or file) written.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.fs as pafs

from benchmarks.ingest.load_k2 import quiet
from benchmarks.measure import emit, peak_rss_bytes
from benchmarks.scale.source import ScaleSource, files, tables
from k2.ingest.loader import Loader, new_load_id, reject_file_for
from k2.lake.catalog import catalog_properties, close_catalog, open_catalog
from k2.lake.storage import file_system
from k2.lake.tables import TRADES
from k2.lake.writer import LakeWriter
from k2.settings import K2Settings

LIMIT_FOLDER = "plain-pyarrow"


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_k2(settings: K2Settings, source: Path, rows: int) -> dict[str, float]:
    """K2's load; the trades table's rows, data files and bytes after it."""
    started = time.perf_counter()
    catalog = open_catalog(settings)
    try:
        writer = LakeWriter(catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
        load_id = new_load_id()
        report = Loader(writer, commit_rows=settings.ingest.commit_rows).run(
            ScaleSource(source, rows), reject_file_for(settings.reject_dir, load_id), load_id
        )
        seconds = time.perf_counter() - started
        snapshot = writer.table(TRADES).current_snapshot()
        summary = (
            {} if snapshot is None or snapshot.summary is None else snapshot.summary.additional_properties
        )
    finally:
        close_catalog(catalog)
    counts = report.counts(TRADES.name)
    return {
        "seconds": seconds,
        "rows_written": counts.rows_written,
        "commits": counts.commits,
        "table_rows": int(summary.get("total-records", 0)),
        "files": int(summary.get("total-data-files", 0)),
        "output_bytes": int(summary.get("total-files-size", 0)),
    }


def load_limit(settings: K2Settings, source: Path, rows: int) -> dict[str, float]:
    """pyarrow's ``write_dataset`` of the same batches; the files and bytes it wrote."""
    started = time.perf_counter()
    filesystem, root = file_system(f"{settings.warehouse}/{LIMIT_FOLDER}", catalog_properties(settings))
    schema = ds.dataset(files(source, rows)[0]).schema
    ds.write_dataset(
        (batch for table in tables(source, rows) for batch in table.to_batches()),
        root,
        schema=schema,
        format="parquet",
        filesystem=filesystem,
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
        existing_data_behavior="overwrite_or_ignore",
    )
    seconds = time.perf_counter() - started
    written = [
        info
        for info in filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
        if info.type == pafs.FileType.File
    ]
    filesystem.delete_dir(root)  # only its size was wanted
    return {
        "seconds": seconds,
        "files": len(written),
        "output_bytes": sum(info.size for info in written),
    }


def main() -> None:
    """Run one load and report it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("settings", type=Path, help="the K2Settings of the lake, as JSON")
    parser.add_argument("--limit", action="store_true", help="plain pyarrow instead of K2")
    args = parser.parse_args()
    quiet()
    settings = K2Settings.model_validate_json(args.settings.read_text())
    rss_after_imports = peak_rss_bytes()
    load = load_limit if args.limit else load_k2
    cpu = cpu_seconds()
    result = load(settings, args.source, args.rows)
    result["cpu_seconds"] = cpu_seconds() - cpu
    emit(
        {
            "rows": args.rows,
            "rss_after_imports": rss_after_imports,
            **result,
        }
    )


if __name__ == "__main__":
    main()
