"""Benchmark 2: load the synthetic market's ASX-format CSV files (10M trades + 10M quotes at
full size) end to end, with the peak RSS of the loading process, and profile where the time goes.

The K2 lake it leaves behind is the one the query benchmark reads.
"""

from __future__ import annotations

from benchmarks.common import DATA_DIR, GIB, Sizes, log, tree_bytes
from benchmarks.ingest.profile import profile
from benchmarks.ingest.runs import bytes_note, ingest_measures, lake_bytes, run_child
from benchmarks.results import Section, Target, Unit
from benchmarks.synthetic_data import MARKER, csv_dir, ensure_csv, lake_dir, mark_lake

TITLE = "Ingest: synthetic CSV"
RATE_TARGET = Target(2_000_000, Unit.ROWS_PER_SECOND)
RSS_TARGET = Target(4 * GIB, Unit.BYTES)
BYTES_TARGET = Target(1.5, Unit.RATIO)


def run(sizes: Sizes) -> Section:
    """Load the directory with K2 and convert it with pyarrow, once each; then profile K2."""
    data, generated_in = ensure_csv(sizes)
    log(f"{TITLE}: K2 load of {data.name}")
    k2 = run_child("benchmarks.ingest.load_k2", lake_dir(sizes), "--asx", data)
    mark_lake(sizes, "ASX")
    log(f"{TITLE}: pyarrow limit")
    limit = run_child("benchmarks.ingest.load_arrow", data, DATA_DIR / "arrow" / data.name)
    log(f"{TITLE}: K2's rows rewritten by plain pyarrow (bytes)")
    written = lake_bytes(lake_dir(sizes), DATA_DIR / "arrow" / f"{lake_dir(sizes).name}-rewrite")
    stages, profiled = profile(data, sizes.profile_symbols)
    generated = (
        f"written in {generated_in:,.0f} s by this run"
        if generated_in is not None
        else "reused from an earlier run"
    )
    csv_bytes = tree_bytes(csv_dir(sizes), "*.csv")
    return Section(
        title=f"{TITLE} ({sizes.trades / 1e6:g}M trades + {sizes.trades / 1e6:g}M quotes)",
        description=(
            f"`SyntheticMarket(symbols={sizes.symbols}, days={sizes.days}, "
            f"trades_per_day={sizes.trades_per_day:_})` written as an ASX-format directory "
            f"({sizes.symbols} trade and {sizes.symbols} quote CSV files, {csv_bytes / GIB:.2f} GiB; "
            f"{generated}), loaded by K2 (`AsxSource`, so its rows are exchange ASX) into a fresh "
            "lake in its own process. Throughput counts trade and quote rows; peak RSS is the loading "
            "process's `ru_maxrss`."
        ),
        limit_name="pyarrow `read_csv` → `write_table(zstd)`",
        measures=ingest_measures(
            k2, limit, written, rate_target=RATE_TARGET, rss_target=RSS_TARGET, bytes_target=BYTES_TARGET
        ),
        tables=[stages],
        notes=[
            f"K2 read {k2.rows:,} rows and wrote {int(k2.extra['rows_written']):,} in "
            f"{int(k2.extra['commits'])} commits (`read_batch_rows` = {int(k2.extra['read_batch_rows']):,}, "
            f"`commit_rows` = {int(k2.extra['commit_rows']):,}); the limit read {limit.rows:,}.",
            bytes_note(written, limit),
            f"The profiled load ran {profiled.seconds:.1f} s. Its rows are cumulative times per call "
            "path, nested under their caller; a function called from several places has its time "
            "shared among them in proportion. Each thread is its own tree (thread-pool workers "
            "without their idle wait) and threads overlap, so shares can add up past 100 %.",
            f"The lake stays in `benchmarks/.data/lakes/{lake_dir(sizes).name}` (marker `{MARKER}`) "
            "for the query benchmark.",
        ],
    )
