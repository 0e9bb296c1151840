"""Where K2's ingest time goes: a K2 load under cProfile (every thread), shown as call trees.

The profiled load reads the first few symbols of the synthetic directory (symlinked, not copied)
so it stays short; the profiler adds little because the heavy work runs in C++ (pyarrow, DuckDB).
The trees are built from the profile's caller/callee edges, so they follow the code as it is
when the benchmark runs: no function names are assumed beyond the benchmark's own ``load``.
"""

from __future__ import annotations

import pstats
import re
from collections import defaultdict
from pathlib import Path

from benchmarks.common import DATA_DIR, REPO_ROOT, fresh_dir, log
from benchmarks.ingest.runs import IngestRun, run_child
from benchmarks.results import Table

Key = tuple[str, int, str]
# pstats keeps, per function: calls, primitive calls, own time, cumulative time, callers; and
# per caller edge: calls, primitive calls, own time, cumulative time.
Entry = tuple[int, int, float, float, dict[Key, tuple[int, int, float, float]]]

MAIN_ROOT = ("benchmarks/ingest/load_k2.py", "load")
SHOWN_SHARE = 0.03
CHAIN_SHARE = 0.95
MAX_DEPTH = 6
IDLE = ("<method 'get' of '_queue.SimpleQueue' objects>",)


def subset(source: Path, symbols: int) -> Path:
    """A directory holding the first ``symbols`` companies' tick files of ``source``, as symlinks."""
    target = fresh_dir(DATA_DIR / f"{source.name}-first{symbols}")
    (target / "reference-data").symlink_to(source / "reference-data")
    for kind in ("trades", "quotes"):
        (target / kind).mkdir()
        for path in sorted((source / kind).glob("*.csv"))[:symbols]:
            (target / kind / path.name).symlink_to(path)
    return target


def label(key: Key) -> str:
    """``file:function``, the file relative to its package root; built-ins by name."""
    file, _, function = key
    if file == "~":
        return f"`{function}`"
    path = file.replace("\\", "/")
    stdlib = re.search(r"/lib/python3\.\d+/(.+)$", path)
    if "/site-packages/" in path:
        path = path.rsplit("/site-packages/", 1)[1]
    elif "/src/" in path:
        path = path.rsplit("/src/", 1)[1]
    elif path.startswith(f"{REPO_ROOT.as_posix()}/"):
        path = path.removeprefix(f"{REPO_ROOT.as_posix()}/")
    elif stdlib:
        path = stdlib.group(1)
    return f"`{path}:{function}`"


def is_k2(key: Key) -> bool:
    """Whether ``key`` is a function of K2 itself."""
    return "/src/k2/" in key[0].replace("\\", "/")


class CallTree:
    """The call graph of a profile, walked from its roots."""

    def __init__(self, stats: pstats.Stats) -> None:
        # pstats keeps its table in an attribute the type stubs do not declare.
        table: dict[Key, Entry] = vars(stats)["stats"]
        self.cumulative = {key: entry[3] for key, entry in table.items()}
        self.children: dict[Key, list[tuple[Key, float]]] = defaultdict(list)
        roots: list[tuple[Key, float]] = []
        for callee, (_, _, _, cumulative, callers) in table.items():
            if not callers:
                roots.append((callee, cumulative))
            for caller, edge in callers.items():
                self.children[caller].append((callee, edge[3]))
        # A thread pool's workers spend most of their life waiting for work: count only the rest.
        self.roots = sorted(
            ((key, seconds - self._idle(key)) for key, seconds in roots),
            key=lambda r: (not self._is_main(r[0]), -r[1]),
        )
        self.total = self.roots[0][1] if self.roots else 0.0

    @staticmethod
    def _is_main(key: Key) -> bool:
        return key[0].replace("\\", "/").endswith(MAIN_ROOT[0]) and key[2] == MAIN_ROOT[1]

    def _idle(self, key: Key) -> float:
        return sum(seconds for child, seconds in self.children[key] if child[2] in IDLE)

    def rows(self) -> list[tuple[str, ...]]:
        """One row per call path taking at least ``SHOWN_SHARE`` of the load, nested by depth."""
        rows: list[tuple[str, ...]] = []
        for root, seconds in self.roots:
            self._walk(root, seconds, 0, rows)
        return rows

    def _shown_children(self, key: Key, seconds: float) -> list[tuple[Key, float]]:
        """The children of ``key`` on this path worth a row, largest first.

        A profile has times per caller, not per call path: a child's time from this caller is
        shared among the caller's paths in proportion to the time each path spent in the caller.
        """
        busy = self.cumulative.get(key, 0.0) - self._idle(key)
        share = min(seconds / busy, 1.0) if busy > 0 else 0.0
        scaled = [(child, child_seconds * share) for child, child_seconds in self.children[key]]
        shown = [c for c in scaled if c[1] >= SHOWN_SHARE * self.total and c[0][2] not in IDLE]
        return sorted(shown, key=lambda c: -c[1])

    def _walk(self, key: Key, seconds: float, depth: int, rows: list[tuple[str, ...]]) -> None:
        if depth > MAX_DEPTH or seconds < SHOWN_SHARE * self.total or key[2] in IDLE:
            return
        # Fold a chain of library wrappers (one child doing nearly all the work) into one row.
        end, children = key, self._shown_children(key, seconds)
        while len(children) == 1 and children[0][1] >= CHAIN_SHARE * seconds and not is_k2(children[0][0]):
            end = children[0][0]
            children = self._shown_children(end, children[0][1])
        text = label(key) if end == key else f"{label(key)} → {label(end)}"
        rows.append(("  " * depth + text, f"{seconds:.2f}", f"{100 * seconds / self.total:.0f} %"))
        for child, child_seconds in children:
            self._walk(child, child_seconds, depth + 1, rows)


def profile(source: Path, symbols: int) -> tuple[Table, IngestRun]:
    """Profile a K2 load of the first ``symbols`` symbols of ``source``."""
    data = subset(source, symbols)
    stats_file = DATA_DIR / "ingest.prof"
    log(f"profiling a K2 load of {data.name}")
    run = run_child(
        "benchmarks.ingest.load_k2", DATA_DIR / "lakes" / "profile", "--asx", data, "--profile", stats_file
    )
    tree = CallTree(pstats.Stats(str(stats_file)))
    title = (
        f"Where K2's ingest time goes: cProfile call trees of a load of {run.rows:,} rows "
        f"({symbols} symbol{'s' if symbols > 1 else ''}; {run.rows_per_second / 1e3:,.0f} k rows/s "
        f"under the profiler; stats in `benchmarks/.data/{stats_file.name}`)"
    )
    return Table(
        title, ("Function (cumulative, per caller)", "Seconds", "Share of the load's wall time"), tree.rows()
    ), run
