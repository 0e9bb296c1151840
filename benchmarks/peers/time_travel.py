"""Time travel (P14): Q1 read as of an older snapshot of the trades beside the same Q1 at the
current snapshot, in process and through the API (``as_of_snapshot``). The peers keep no history
of their tables, so this compares K2 with itself.

The older snapshot is the middle one of the trades' history (one snapshot per load commit; the
first commits may hold only some symbols or days), and the picks are drawn from the symbol x day
x session hours of that snapshot's own rows, so both reads answer the same rows (checked).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from benchmarks import raw_queries
from benchmarks.api.latency import MIN_DAY_TRADES, Lake, ids, json_rows, symbol_days
from benchmarks.api.serving import Client, hour_params
from benchmarks.common import percentile, timed_ms
from benchmarks.peers.engine import PAGE_ROWS
from benchmarks.picks import Draw, HourPick, distinct_runs, hours
from benchmarks.results import Measure, Table, Target, Unit
from k2.lake.tables import TRADES
from k2.query import AsOf, QueryEngine, TickQuery, trades

TARGET = Target(1.5, Unit.RATIO)
IN_PROCESS = "K2 in process"
API = "K2 API JSON"


@dataclass(frozen=True, slots=True)
class OldSnapshot:
    """The older snapshot read: its id, place in the history, trades and files."""

    snapshot_id: int
    number: int
    count: int
    trades: int
    paths: list[str]


def older_snapshot(engine: QueryEngine) -> OldSnapshot:
    """The middle snapshot of the trades' history (the current one when it is the only one)."""
    history = sorted(engine.table(TRADES).metadata.snapshots, key=lambda s: s.timestamp_ms)
    number = max(1, len(history) // 2)
    chosen = history[number - 1].snapshot_id
    scan = engine.scan(TRADES, as_of=AsOf(snapshot_id=chosen))
    return OldSnapshot(chosen, number, len(history), scan.rows, scan.paths)


@dataclass
class TimeTravel:
    """Q1's latencies (ms) at the current snapshot and as of the older one, per way of asking."""

    old: OldSnapshot
    space: int = 0
    current: dict[str, list[float]] = field(default_factory=lambda: {IN_PROCESS: [], API: []})
    as_of: dict[str, list[float]] = field(default_factory=lambda: {IN_PROCESS: [], API: []})
    mismatches: list[str] = field(default_factory=list)

    def measures(self) -> list[Measure]:
        """As-of over current, p50 and p99, in process and through the API, with the target."""
        found = []
        for where in (IN_PROCESS, API):
            now, then = self.current[where], self.as_of[where]
            for name, q in (("p50", 0.5), ("p99", 0.99)):
                found.append(
                    Measure(
                        "Time travel (P14, an as-of read ≤ 1.5x the current one): "
                        f"Q1 as of snapshot {self.old.number} of {self.old.count} / at "
                        f"the current snapshot, {where}, {len(now)} runs: {name}",
                        Unit.RATIO,
                        percentile(then, q) / percentile(now, q),
                        None,
                        TARGET,
                    )
                )
        return found

    def table(self) -> Table:
        """The latencies behind the ratios."""
        rows: list[tuple[str, ...]] = [
            (
                where,
                *(f"{percentile(self.current[where], q):.1f}" for q in (0.5, 0.99)),
                *(f"{percentile(self.as_of[where], q):.1f}" for q in (0.5, 0.99)),
            )
            for where in (IN_PROCESS, API)
        ]
        return Table(
            "Time travel (P14, an as-of read ≤ 1.5x the current one): "
            f"Q1 at the current snapshot and as of snapshot {self.old.snapshot_id} "
            f"({self.old.number} of {self.old.count}), ms",
            ("K2", "Current: p50", "Current: p99", "As of: p50", "As of: p99"),
            rows,
        )

    def note(self) -> str:
        """What was read and asked, and what the checks found."""
        checked = (
            "The as-of and current answers were the same rows on every pick."
            if not self.mismatches
            else f"The as-of and current answers DIFFERED {len(self.mismatches)} times, "
            f"e.g. {self.mismatches[0]}."
        )
        return (
            f"Time travel: snapshot {self.old.snapshot_id} is number {self.old.number} of the trades' "
            f"{self.old.count} (one per load commit) and holds {self.old.trades:,} trades; the picks are "
            f"drawn without replacement from the {self.space} symbol x day x session hours of its rows "
            f"(days with {MIN_DAY_TRADES:,}+ trades); on each pick the current and the as-of read take "
            "turns going first. In process: `trades()` with `as_of=AsOf(snapshot_id=…)`; API: `GET "
            "/v1/trades?as_of_snapshot=…` in JSON, requests the answer cache had not seen. The peers "
            "keep no history (their tables hold the current rows only), so the comparison is K2 with "
            f"itself and the ratio is as-of / current. {checked}"
        )


def _in_process(engine: QueryEngine, pick: HourPick, as_of: AsOf) -> tuple[list[str], float]:
    symbol, start, end = pick
    query = TickQuery(symbols=(symbol,), start=start, end=end, limit=PAGE_ROWS, as_of=as_of)
    page, ms = timed_ms(partial(trades, engine, query))
    return ids(page.rows), ms


def _api(client: Client, pick: HourPick, snapshot_id: int | None) -> tuple[list[str], float]:
    params = hour_params(*pick, PAGE_ROWS)
    if snapshot_id is not None:
        params["as_of_snapshot"] = snapshot_id
    reply, ms = timed_ms(partial(client.get, "/v1/trades", params))
    return ids(json_rows(reply)), ms


Ask = Callable[[], tuple[list[str], float]]


def _in_turn(
    now: Ask, then: Ask, current_first: bool
) -> tuple[tuple[list[str], float], tuple[list[str], float]]:
    if current_first:
        current = now()
        return current, then()
    old = then()
    return now(), old


def measure(
    lake: Lake, client: Client, *, runs: int, warmup: int, seed: int, asked: Collection[HourPick]
) -> TimeTravel:
    """Q1 now and as of the older snapshot, in process and through the API, on each pick; the
    picks ``asked`` before (whose current answers the API holds) are left out.
    """
    old = older_snapshot(lake.engine)
    con = raw_queries.connect(lake.engine.settings.threads, lake.engine.settings.memory_limit)
    try:
        every = hours(symbol_days(con, old.paths, lake.exchange, lake.venue), lake.venue)
    finally:
        con.close()
    seen = set(asked)
    space = [pick for pick in every if pick not in seen] or every
    travel = TimeTravel(old, len(space))
    draw = Draw(space, seed)
    back = AsOf(snapshot_id=old.snapshot_id)
    for number in range(warmup + distinct_runs(runs, warmup, len(space), 1)):
        pick = draw()
        asks = {
            IN_PROCESS: (
                partial(_in_process, lake.engine, pick, AsOf()),
                partial(_in_process, lake.engine, pick, back),
            ),
            API: (partial(_api, client, pick, None), partial(_api, client, pick, old.snapshot_id)),
        }
        for where, (now, then) in asks.items():
            (current, current_ms), (past, past_ms) = _in_turn(now, then, number % 2 == 0)
            if current != past:
                travel.mismatches.append(f"{where}: {pick[0]} from {_when(pick[1])}")
            if number >= warmup:
                travel.current[where].append(current_ms)
                travel.as_of[where].append(past_ms)
    return travel


def _when(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d %H:%M} UTC"
