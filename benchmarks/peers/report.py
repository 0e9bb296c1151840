"""The peers benchmark's figures: per query, each system's p50 and p99 (Q5: rows per second),
the fastest peer, and K2's API against it (from the rollup and on the fly), as the section's
measures and tables; Q4 full's cold and warm runs; the K2 API's caches per series.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.api.serving import ANSWERS, ROW_GROUPS, CacheCounts
from benchmarks.common import percentile
from benchmarks.peers.engine import PER_REQUEST, Query
from benchmarks.peers.runs import REFERENCE, Runs
from benchmarks.results import Measure, Table, Target, Unit

K2_API = "K2 API"
K2_API_ON_THE_FLY = "K2 API on the fly"
K2_ON_THE_FLY = f"{REFERENCE} on the fly"
API_COLUMNS = (K2_API, K2_API_ON_THE_FLY)
API_FORMATS = ("JSON", "Arrow")
# The API's main figure: JSON for the small answers, Arrow for the symbol-day ones.
MAIN_FORMAT = {
    Query.TICKS: "JSON",
    Query.TICKS_AGAIN: "JSON",
    Query.BARS: "JSON",
    Query.BARS_AGAIN: "JSON",
    Query.ALL_BARS: "JSON",
    Query.QUOTES: "Arrow",
    Query.EXPORT: "Arrow",
}
# p99 targets of the API's main figure: Q2 from the rollup (the default) and on the fly.
TAIL_TARGETS = {
    (Query.TICKS, K2_API): Target(15, Unit.MILLISECONDS),
    (Query.BARS, K2_API): Target(5, Unit.MILLISECONDS),
    (Query.BARS, K2_API_ON_THE_FLY): Target(20, Unit.MILLISECONDS),
}
RATE_TARGET = Target(10_000_000, Unit.ROWS_PER_SECOND)
FULL_TARGET = Target(5, Unit.SECONDS)


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


def k2_main(runs: Runs, query: Query, api: str = K2_API) -> tuple[str, Figure] | None:
    """K2's figure the query is judged by: the API's main format, else (for the default API)
    K2 in process.
    """
    label = f"{api} {MAIN_FORMAT[query]}"
    measured = figure(runs, query, label)
    if measured is not None or api != K2_API:
        return None if measured is None else (label, measured)
    in_process = figure(runs, query, REFERENCE)
    return None if in_process is None else (REFERENCE, in_process)


def _value(measured: Figure | None, tail: bool) -> str:
    if measured is None:
        return "—"
    value = measured.tail if tail else measured.typical
    if measured.unit is Unit.MILLISECONDS:
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    shown = measured.unit.show(value)
    return shown if tail else f"{shown} ({measured.ms:,.0f} ms)"


def _cell(runs: Runs, query: Query, column: Column, tail: bool) -> str:
    if column.name in API_COLUMNS:
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
        *(f"{c.name} ({' / '.join(c.variants)})" if c.name in API_COLUMNS else c.name for c in columns),
        "Fastest peer",
        "K2 API / fastest peer",
    )
    rows: list[tuple[str, ...]] = []
    for query in PER_REQUEST:
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
    for query in PER_REQUEST:
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


def _query_measures(
    query: Query, api: str, main: tuple[str, Figure], peer: tuple[Column, str, Figure]
) -> list[Measure]:
    (label, k2), (column, variant, theirs) = main, peer
    against = f"{label} vs {column.label(variant)}"
    if query is Query.EXPORT:
        return [
            Measure(
                f"{query.value}: median rows/s of {k2.runs} runs, {against}",
                Unit.ROWS_PER_SECOND,
                k2.typical,
                theirs.typical,
                RATE_TARGET,
            )
        ]
    return [
        Measure(
            f"{query.value}: p50 of {k2.runs} runs, {against}", Unit.MILLISECONDS, k2.typical, theirs.typical
        ),
        Measure(
            f"{query.value}: p99 of {k2.runs} runs, {against}",
            Unit.MILLISECONDS,
            k2.tail,
            theirs.tail,
            TAIL_TARGETS.get((query, api)),
        ),
    ]


def measures(runs: Runs, columns: list[Column]) -> list[Measure]:
    """Per query, K2's main figures (the API from the rollup, then on the fly where it was asked)
    beside the fastest peer's, with the project's targets; then Q4 full's.
    """
    found: list[Measure] = []
    for query in PER_REQUEST:
        peer = fastest_peer(runs, query, columns)
        for api in API_COLUMNS:
            main = k2_main(runs, query, api)
            if main is not None and peer is not None:
                found += _query_measures(query, api, main, peer)
    return found + full_measures(runs, columns)


@dataclass(frozen=True, slots=True)
class ColdWarm:
    """Q4 full of one system: its first run and the median of the later ones, in seconds."""

    label: str
    cold: float
    warm: float | None
    warm_runs: int


def cold_warm(runs: Runs, columns: list[Column], peer: bool) -> list[ColdWarm]:
    """Q4 full's figures of every system (peers or K2) that ran it."""
    found = []
    for column in columns:
        for variant in column.variants if column.peer == peer else ():
            times = runs.times[Query.FULL_QUOTES].get(column.label(variant))
            if times:
                warm = percentile(times[1:], 0.5) / 1000 if len(times) > 1 else None
                found.append(ColdWarm(column.label(variant), times[0] / 1000, warm, len(times) - 1))
    return found


def full_measures(runs: Runs, columns: list[Column]) -> list[Measure]:
    """Q4 full, cold and warm: K2 in process beside the fastest peer, with the target."""
    k2 = next(iter(cold_warm(runs, columns, peer=False)), None)
    peers = cold_warm(runs, columns, peer=True)
    if k2 is None or not peers:
        return []
    cold = min(peers, key=lambda p: p.cold)
    found = [
        Measure(
            f"{Query.FULL_QUOTES.value}, cold (first run): {k2.label} vs {cold.label}",
            Unit.SECONDS,
            k2.cold,
            cold.cold,
            FULL_TARGET,
        )
    ]
    warm = [p for p in peers if p.warm is not None]
    if k2.warm is not None and warm:
        fastest = min(warm, key=lambda p: p.warm or 0.0)
        found.append(
            Measure(
                f"{Query.FULL_QUOTES.value}, warm (median of {k2.warm_runs} later runs): {k2.label} vs "
                f"{fastest.label}",
                Unit.SECONDS,
                k2.warm,
                fastest.warm,
                FULL_TARGET,
            )
        )
    return found


def full_table(runs: Runs, columns: list[Column], title: str) -> Table:
    """Q4 full of every system that ran it: cold and warm seconds."""
    rows: list[tuple[str, ...]] = [
        (
            figures.label,
            f"{figures.cold:,.2f}",
            "—" if figures.warm is None else f"{figures.warm:,.2f}",
            str(figures.warm_runs),
        )
        for peer in (False, True)
        for figures in cold_warm(runs, columns, peer)
    ]
    return Table(
        title, ("System", "Cold: first run, s", "Warm: median of the later runs, s", "Later runs"), rows
    )


def caches_table(caches: list[tuple[str, dict[str, CacheCounts]]]) -> Table:
    """The K2 API servers' caches during each timed series: answer cache and row groups."""
    servers = list(dict.fromkeys(name for _, by_server in caches for name in by_server))
    rows: list[tuple[str, ...]] = [
        (
            series,
            *(
                f"{by_server[name][ANSWERS]}; {by_server[name][ROW_GROUPS]}" if name in by_server else "—"
                for name in servers
            ),
        )
        for series, by_server in caches
    ]
    return Table(
        "The K2 API's caches during each timed series (warm-up picks excluded): answer cache; "
        "decoded row groups (hits and misses from `/metrics`, JSON and Arrow requests together)",
        ("Series", *servers),
        rows,
    )
