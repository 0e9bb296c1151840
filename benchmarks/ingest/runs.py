"""Run ingest subprocesses and turn their reports into measures."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import MIB, REPO_ROOT, BenchmarkError
from benchmarks.measure import RESULT_PREFIX
from benchmarks.results import Measure, Target, Unit


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


def child_result(module: str, *args: str | Path) -> dict[str, Any]:
    """Run ``python -m module args…`` and return the result it printed (see ``benchmarks.measure``).

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
    payload: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    return payload


def run_child(module: str, *args: str | Path) -> IngestRun:
    """Run the ingest ``python -m module args…`` and read its result.

    Raises:
        BenchmarkError: when the process fails or prints no result.
    """
    payload = child_result(module, *args)
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


@dataclass(frozen=True, slots=True)
class LakeBytes:
    """A K2 lake's data files beside the same rows written again by plain pyarrow."""

    k2: int
    plain: int
    k2_message_id: int
    plain_message_id: int

    @property
    def ratio(self) -> float:
        """K2's bytes / plain pyarrow's."""
        return self.k2 / self.plain


def lake_bytes(lake: Path, scratch: Path) -> LakeBytes:
    """Rewrite every data file of ``lake`` with plain ``write_table(zstd)`` (in ``scratch``) and
    compare the sizes (``benchmarks.ingest.load_arrow --rewrite``).
    """
    result = child_result("benchmarks.ingest.load_arrow", "--rewrite", lake, scratch)
    return LakeBytes(
        k2=int(result["k2_bytes"]),
        plain=int(result["plain_bytes"]),
        k2_message_id=int(result["k2_message_id_bytes"]),
        plain_message_id=int(result["plain_message_id_bytes"]),
    )


def bytes_note(written: LakeBytes, limit: IngestRun) -> str:
    """How K2's bytes compare with plain pyarrow's, and what ``message_id`` takes."""
    return (
        "Parquet bytes: the limit is K2's own data files read back and written again by plain "
        '`pq.write_table(table, compression="zstd")` (same rows, same columns; a dictionary for '
        "every column, row groups of up to 1Mi rows). The CSV limit above writes only the files' "
        f"own columns ({limit.output_bytes / MIB:,.0f} MiB). `message_id` (36-character UUID text) "
        f"is {written.k2_message_id / MIB:,.0f} MiB of K2's bytes "
        f"({written.k2_message_id / written.k2:.0%}) and {written.plain_message_id / MIB:,.0f} MiB "
        "of plain pyarrow's."
    )


def ingest_measures(
    k2: IngestRun,
    limit: IngestRun,
    written: LakeBytes,
    *,
    rate_target: Target | None = None,
    rss_target: Target | None = None,
    bytes_target: Target | None = None,
) -> list[Measure]:
    """K2 beside the limit: throughput, wall time, peak RSS, and bytes written beside plain
    pyarrow's for the same rows (``bytes_target`` bounds their ratio).
    """
    measures = [
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
        Measure(
            "Parquet bytes written (limit: the same rows by plain pyarrow)",
            Unit.BYTES,
            written.k2,
            written.plain,
        ),
    ]
    if bytes_target is not None:
        measures.append(
            Measure(
                "Parquet bytes / plain pyarrow zstd of the same rows",
                Unit.RATIO,
                written.ratio,
                None,
                bytes_target,
            )
        )
    return measures


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
