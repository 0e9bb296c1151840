"""The peers benchmark's figures: per query, each system's p50 and p99 (Q5: rows per second),
the fastest peer, and K2's API against it, as the section's measures and tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.common import percentile
from benchmarks.peer_engine import Query
from benchmarks.peer_runs import Runs
from benchmarks.results import Measure, Table, Target, Unit

K2_API = "K2 API"
API_FORMATS = ("JSON", "Arrow")
# The API's main figure: JSON for the small answers, Arrow for the symbol-day ones.
MAIN_FORMAT = {
    Query.TICKS: "JSON",
    Query.BARS: "JSON",
    Query.ALL_BARS: "JSON",
    Query.QUOTES: "Arrow",
    Query.EXPORT: "Arrow",
}
TAIL_TARGETS = {Query.TICKS: Target(15, Unit.MILLISECONDS), Query.BARS: Target(20, Unit.MILLISECONDS)}
RATE_TARGET = Target(10_000_000, Unit.ROWS_PER_SECOND)


@dataclass(frozen=True, slots=True)
class Column:
    """A system of the report and its variants (protocols or formats; ("",) when one)."""

    name: str
    variants: tuple[str, ...]
    peer: bool

    def label(self, variant: str) -> str:
        """The runs' label of one variant."""
        return f"{self.name} {variant}".strip()


@dataclass(frozen=True, slots=True)
class Figure:
    """One system's figures on one query: ``typical`` (p50 ms, or median rows/s) and ``tail``
    (p99 ms, or the slowest run's rows/s), the median time and the runs.
    """

    typical: float
    tail: float
    ms: float
    unit: Unit
    runs: int

    def beats(self, other: Figure) -> bool:
        """Whether this typical figure is the better one."""
        if self.unit.higher_is_better:
            return self.typical > other.typical
        return self.typical < other.typical


def figure(runs: Runs, query: Query, label: str) -> Figure | None:
    """The figures of ``label`` on ``query``; None when it did not run it."""
    times = runs.times[query].get(label)
    if not times:
        return None
    median_ms = percentile(times, 0.5)
    if query is Query.EXPORT:
        rates = [rows / ms * 1000 for rows, ms in zip(runs.rows[query][label], times, strict=True)]
        return Figure(percentile(rates, 0.5), min(rates), median_ms, Unit.ROWS_PER_SECOND, len(times))
    return Figure(median_ms, percentile(times, 0.99), median_ms, Unit.MILLISECONDS, len(times))


def best(runs: Runs, query: Query, column: Column) -> tuple[str, Figure] | None:
    """The column's fastest variant on ``query`` and its figures."""
    found: tuple[str, Figure] | None = None
    for variant in column.variants:
        measured = figure(runs, query, column.label(variant))
        if measured is not None and (found is None or measured.beats(found[1])):
            found = (variant, measured)
    return found


def fastest_peer(runs: Runs, query: Query, columns: list[Column]) -> tuple[Column, str, Figure] | None:
    """The peer (and its variant) with the best typical figure on ``query``."""
    found: tuple[Column, str, Figure] | None = None
    for column in columns:
        measured = best(runs, query, column) if column.peer else None
        if measured is not None and (found is None or measured[1].beats(found[2])):
            found = (column, *measured)
    return found


def k2_main(runs: Runs, query: Query) -> tuple[str, Figure] | None:
    """K2's figure the query is judged by: the API's main format, else K2 in process."""
    label = f"{K2_API} {MAIN_FORMAT[query]}"
    measured = figure(runs, query, label)
    if measured is not None:
        return label, measured
    in_process = figure(runs, query, "K2 in process")
    return None if in_process is None else ("K2 in process", in_process)


def _value(measured: Figure | None, tail: bool) -> str:
    if measured is None:
        return "—"
    value = measured.tail if tail else measured.typical
    if measured.unit is Unit.MILLISECONDS:
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    shown = measured.unit.show(value)
    return shown if tail else f"{shown} ({measured.ms:,.0f} ms)"


def _cell(runs: Runs, query: Query, column: Column, tail: bool) -> str:
    if column.name == K2_API:
        return " / ".join(_value(figure(runs, query, column.label(v)), tail) for v in column.variants)
    measured = best(runs, query, column)
    if measured is None:
        return "—"
    variant, chosen = measured
    return _value(chosen, tail) + (f" ({variant})" if len(column.variants) > 1 else "")


def _ratio(k2: Figure | None, peer: Figure | None, tail: bool) -> str:
    if k2 is None or peer is None:
        return "—"
    mine, theirs = (k2.tail, peer.tail) if tail else (k2.typical, peer.typical)
    return f"{mine / theirs:.2f}x" if theirs else "—"


def figures_table(runs: Runs, columns: list[Column], tail: bool) -> Table:
    """Rows Q1 … Q5; a column per system, then the fastest peer and K2's API against it."""
    headers = (
        "Query",
        *(f"{c.name} ({' / '.join(c.variants)})" if c.name == K2_API else c.name for c in columns),
        "Fastest peer",
        "K2 API / fastest peer",
    )
    rows: list[tuple[str, ...]] = []
    for query in Query:
        peer = fastest_peer(runs, query, columns)
        main = k2_main(runs, query)
        rows.append(
            (
                query.value,
                *(_cell(runs, query, column, tail) for column in columns),
                "—" if peer is None else f"{peer[0].name}: {_value(peer[2], tail)}",
                _ratio(None if main is None else main[1], None if peer is None else peer[2], tail),
            )
        )
    if tail:
        title = "p99 latency, ms (Q5: the slowest run's rows/s)"
    else:
        title = "p50 latency, ms (Q5: median rows/s and its time)"
    return Table(title, headers, rows)


def variants_table(runs: Runs, column: Column) -> Table:
    """One system's variants side by side: p50 / p99 (Q5: median / slowest rows/s)."""
    rows: list[tuple[str, ...]] = []
    for query in Query:
        cells = []
        for variant in column.variants:
            measured = figure(runs, query, column.label(variant))
            cells.append("—" if measured is None else f"{_value(measured, False)} / {_value(measured, True)}")
        chosen = best(runs, query, column)
        rows.append((query.value, *cells, "—" if chosen is None else chosen[0]))
    return Table(
        f"{column.name} by protocol: p50 / p99 ms (Q5: median / slowest rows/s)",
        ("Query", *column.variants, "Faster"),
        rows,
    )


def measures(runs: Runs, columns: list[Column]) -> list[Measure]:
    """Per query, K2's main figure beside the fastest peer's, with the project's targets."""
    found: list[Measure] = []
    for query in Query:
        main = k2_main(runs, query)
        peer = fastest_peer(runs, query, columns)
        if main is None or peer is None:
            continue
        (label, k2), (column, variant, theirs) = main, peer
        against = f"{label} vs {column.label(variant)}"
        if query is Query.EXPORT:
            found.append(
                Measure(
                    f"{query.value}: median rows/s of {k2.runs} runs, {against}",
                    Unit.ROWS_PER_SECOND,
                    k2.typical,
                    theirs.typical,
                    RATE_TARGET,
                )
            )
            continue
        found += [
            Measure(
                f"{query.value}: p50 of {k2.runs} runs, {against}",
                Unit.MILLISECONDS,
                k2.typical,
                theirs.typical,
            ),
            Measure(
                f"{query.value}: p99 of {k2.runs} runs, {against}",
                Unit.MILLISECONDS,
                k2.tail,
                theirs.tail,
                TAIL_TARGETS.get(query),
            ),
        ]
    return found
