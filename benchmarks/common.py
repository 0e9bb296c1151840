"""Paths, sizes and small helpers shared by the benchmarks. Standard library only, so the
subprocess that measures the pyarrow limit imports nothing of K2.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "benchmarks" / ".data"
ASX_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "asx-sample"
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"

MIB = 1024 * 1024
GIB = 1024 * MIB


class BenchmarkError(RuntimeError):
    """A benchmark (or one of its subprocesses) failed."""


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How big each benchmark runs."""

    name: str
    symbols: int
    days: int
    trades_per_day: int
    asx_repeats: int
    profile_symbols: int
    tick_query_runs: int
    bar_query_runs: int
    summary_runs: int
    warmup_runs: int
    # An API latency series stops after this long once it has its minimum runs.
    api_series_seconds: float
    api_throughput_seconds: float
    api_export_runs: int
    # The peers benchmark: timed picks of Q1 and Q2, of Q3, and of Q4 and Q5.
    peer_query_runs: int
    peer_bulk_runs: int
    peer_day_runs: int

    @property
    def trades(self) -> int:
        """Trades of the synthetic market (it has as many quotes)."""
        return self.symbols * self.days * self.trades_per_day

    @property
    def tag(self) -> str:
        """A directory-name tag for data built at these sizes."""
        return f"s{self.symbols}-d{self.days}-t{self.trades_per_day}"


FULL = Sizes(
    name="full",
    symbols=20,
    days=5,
    trades_per_day=100_000,
    asx_repeats=3,
    profile_symbols=4,
    tick_query_runs=200,
    bar_query_runs=10,
    summary_runs=200,
    warmup_runs=3,
    api_series_seconds=20.0,
    api_throughput_seconds=20.0,
    api_export_runs=3,
    peer_query_runs=100,
    peer_bulk_runs=5,
    peer_day_runs=10,
)
QUICK = Sizes(
    name="quick",
    symbols=4,
    days=2,
    trades_per_day=25_000,
    asx_repeats=1,
    profile_symbols=1,
    tick_query_runs=30,
    bar_query_runs=3,
    summary_runs=30,
    warmup_runs=1,
    api_series_seconds=3.0,
    api_throughput_seconds=3.0,
    api_export_runs=1,
    peer_query_runs=15,
    peer_bulk_runs=2,
    peer_day_runs=3,
)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-quantile (0 < q <= 1) of ``values``; p99 of 10 values is the max."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed_ms(call: Callable[[], T]) -> tuple[T, float]:
    """Call ``call`` and return its result and wall time in milliseconds."""
    started = time.perf_counter()
    result = call()
    return result, (time.perf_counter() - started) * 1000


def fresh_dir(path: Path) -> Path:
    """``path`` as an empty directory."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def tree_bytes(path: Path, pattern: str = "*") -> int:
    """Total size of the files under ``path`` matching ``pattern``."""
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def log(message: str) -> None:
    """Progress on the console."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
