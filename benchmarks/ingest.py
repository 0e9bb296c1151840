"""Run ingest subprocesses and turn their reports into measures."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REPO_ROOT
from benchmarks.measure import RESULT_PREFIX
from benchmarks.results import Measure, Target, Unit


class BenchmarkError(RuntimeError):
    """A benchmark subprocess failed."""


@dataclass(frozen=True, slots=True)
class IngestRun:
    """What one ingest process reported."""

    rows: int
    seconds: float
    peak_rss_bytes: int
    rss_after_imports: int
    output_bytes: int
    extra: dict[str, float]

    @property
    def rows_per_second(self) -> float:
        """Input rows per second."""
        return self.rows / self.seconds


def run_child(module: str, *args: str | Path) -> IngestRun:
    """Run ``python -m module args…`` and read the result line it prints.

    Raises:
        BenchmarkError: when the process fails or prints no result.
    """
    command = [sys.executable, "-m", module, *map(str, args)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise BenchmarkError(
            f"{' '.join(command)} exited with {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-6000:]}"
        )
    payload: dict[str, float] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    known = {"rows", "seconds", "peak_rss_bytes", "rss_after_imports", "output_bytes"}
    return IngestRun(
        rows=int(payload["rows"]),
        seconds=float(payload["seconds"]),
        peak_rss_bytes=int(payload["peak_rss_bytes"]),
        rss_after_imports=int(payload["rss_after_imports"]),
        output_bytes=int(payload["output_bytes"]),
        extra={k: float(v) for k, v in payload.items() if k not in known},
    )


def median_run(runs: list[IngestRun]) -> IngestRun:
    """The run of median duration (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[(len(ordered) - 1) // 2]


def ingest_measures(
    k2: IngestRun, limit: IngestRun, rate_target: Target | None = None, rss_target: Target | None = None
) -> list[Measure]:
    """K2 beside the limit: throughput, wall time, peak RSS and bytes written."""
    return [
        Measure(
            "Throughput (input rows/s)",
            Unit.ROWS_PER_SECOND,
            k2.rows_per_second,
            limit.rows_per_second,
            rate_target,
        ),
        Measure("Wall time", Unit.SECONDS, k2.seconds, limit.seconds),
        Measure("Peak RSS of the process", Unit.BYTES, k2.peak_rss_bytes, limit.peak_rss_bytes, rss_target),
        Measure("RSS after imports (baseline)", Unit.BYTES, k2.rss_after_imports, limit.rss_after_imports),
        Measure("Parquet bytes written", Unit.BYTES, k2.output_bytes, limit.output_bytes),
    ]


def spread_note(what: str, runs: list[IngestRun]) -> str:
    """A note giving the spread of repeated runs."""
    rates = [r.rows_per_second for r in runs]
    if len(rates) == 1:
        return f"{what}: one run."
    return (
        f"{what}: median of {len(rates)} runs; throughput ranged "
        f"{min(rates) / 1e3:,.0f}-{max(rates) / 1e3:,.0f} k rows/s "
        f"(stdev {statistics.stdev(rates) / 1e3:,.0f} k)."
    )
