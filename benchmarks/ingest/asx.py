"""Benchmark 1: load the ASX sample (about 370k trades and quotes) end to end."""

from __future__ import annotations

from benchmarks.common import ASX_SAMPLE, DATA_DIR, Sizes, log
from benchmarks.ingest.runs import bytes_note, ingest_measures, lake_bytes, median_run, run_child, spread_note
from benchmarks.results import Section

TITLE = "Ingest: ASX sample"


def run(sizes: Sizes) -> Section:
    """Load the sample with K2 and convert it with pyarrow, ``sizes.asx_repeats`` times each."""
    if not (ASX_SAMPLE / "trades").is_dir():
        raise FileNotFoundError(f"the ASX sample is not at {ASX_SAMPLE}")
    lake = DATA_DIR / "lakes" / "asx-sample"
    out = DATA_DIR / "arrow" / "asx-sample"
    k2_runs, limit_runs = [], []
    for i in range(sizes.asx_repeats):
        log(f"{TITLE}: run {i + 1}/{sizes.asx_repeats}")
        k2_runs.append(run_child("benchmarks.ingest.load_k2", lake, "--asx", ASX_SAMPLE))
        limit_runs.append(run_child("benchmarks.ingest.load_arrow", ASX_SAMPLE, out))
    k2, limit = median_run(k2_runs), median_run(limit_runs)
    written = lake_bytes(lake, DATA_DIR / "arrow" / "asx-sample-rewrite")
    return Section(
        title=TITLE,
        description=(
            f"`{ASX_SAMPLE.name}` (real ASX ticks, 10-14 March 2014): {k2.rows:,} trade and quote rows "
            "in 8 headerless CSV files, plus reference data. K2 runs `Loader` + `AsxSource` + "
            "`LakeWriter` into a fresh lake (SQLite catalog, local warehouse), each load in its own "
            "process."
        ),
        limit_name="pyarrow `read_csv` → `write_table(zstd)`",
        measures=ingest_measures(k2, limit, written),
        notes=[
            spread_note("K2", k2_runs),
            spread_note("Limit", limit_runs),
            f"K2 read {k2.rows:,} tick rows and wrote {int(k2.extra['rows_written']):,} "
            f"({int(k2.extra['rows_rejected']):,} rejected) in {int(k2.extra['commits'])} commits; "
            f"the limit read {limit.rows:,}.",
            bytes_note(written, limit),
        ],
    )
