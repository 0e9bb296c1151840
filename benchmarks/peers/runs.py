"""The interleaved runs of the peers benchmark: on each pick every system answers in turn, and
each answer is timed, then checked against K2 in process's. Warm-up picks are answered and checked
but not timed.

The turn order is a seeded shuffle on even picks and its reverse on the next pick, so of any two
entries each goes first equally often: two ways of asking one server (the K2 API's JSON and Arrow,
QuestDB's three protocols) take turns finding the other's caches warm on a pick.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa

from benchmarks.common import timed_ms
from benchmarks.peers.checks import agrees, unquoted
from benchmarks.peers.engine import PER_REQUEST, Answer, Engine, Query, Window

REFERENCE = "K2 in process"
ORDER_SEED = 7


@dataclass(frozen=True, slots=True)
class Entry:
    """One way of asking one system: the system, its protocol or format ("" if one), the engine
    and the queries it is asked (None: every query asked request by request).
    """

    system: str
    variant: str
    engine: Engine
    queries: frozenset[Query] | None = None

    @property
    def label(self) -> str:
        """The system and its variant."""
        return f"{self.system} {self.variant}".strip()

    def asks(self, query: Query) -> bool:
        """Whether this entry is asked ``query``."""
        return query in PER_REQUEST if self.queries is None else query in self.queries


def ask(engine: Engine, query: Query, pick: Window | None) -> Answer:
    """``engine``'s answer to ``query`` on ``pick``."""
    match query:
        case Query.TICKS | Query.TICKS_AGAIN | Query.EXPORT:
            assert pick is not None
            return engine.trades(pick)
        case Query.BARS | Query.BARS_AGAIN | Query.ALL_BARS:
            return engine.bars(pick)
        case Query.QUOTES:
            assert pick is not None
            return engine.with_quotes(pick)
        case Query.FULL_QUOTES:
            return engine.all_quotes()


def _as_arrow(engine: Engine, query: Query, pick: Window | None) -> pa.Table:
    return ask(engine, query, pick).table()


def turns(entries: list[Entry], picks: int, seed: int = ORDER_SEED) -> list[list[Entry]]:
    """The order the entries answer in on each pick: shuffled, then reversed on the next pick."""
    rng = random.Random(seed)
    orders: list[list[Entry]] = []
    for number in range(picks):
        if number % 2:
            orders.append(orders[-1][::-1])
        else:
            orders.append(rng.sample(entries, len(entries)))
    return orders


def pick_name(pick: Window | None) -> str:
    """A pick, for a disagreement's note."""
    if pick is None:
        return "every trade"
    return f"{pick.symbol} from {pick.start:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """An answer that was not K2 in process's."""

    query: Query
    label: str
    pick: str

    def __str__(self) -> str:
        return f"{self.query.short}: {self.label} on {self.pick}"


@dataclass
class Runs:
    """Per query and entry label, the timed runs (ms) and their rows; what the checks found."""

    times: dict[Query, dict[str, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    rows: dict[Query, dict[str, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    mismatches: list[Mismatch] = field(default_factory=list)
    checked: int = 0
    quoted_trades: int = 0
    unquoted_trades: int = 0
    # K2 in process's answers, for checking entries asked in a later call (Q4 full: QuestDB).
    references: dict[tuple[Query, str], pa.Table] = field(default_factory=dict)

    def _record(self, query: Query, label: str, ms: float, rows: int) -> None:
        self.times[query].setdefault(label, []).append(ms)
        self.rows[query].setdefault(label, []).append(rows)

    def _check(self, query: Query, pick: Window | None, tables: dict[str, pa.Table]) -> None:
        if REFERENCE in tables:
            self.references[query, pick_name(pick)] = tables[REFERENCE]
        expected = self.references[query, pick_name(pick)]
        if query is Query.QUOTES and REFERENCE in tables:
            self.quoted_trades += int(expected.num_rows)
            self.unquoted_trades += unquoted(expected)
        for label, table in tables.items():
            if label == REFERENCE:
                continue
            self.checked += 1
            if not agrees(query, table, expected):
                self.mismatches.append(Mismatch(query, label, pick_name(pick)))

    def measure(self, query: Query, entries: list[Entry], picks: list[Window | None], warmup: int) -> None:
        """Ask every entry each pick, the first ``warmup`` picks untimed. Q5's time includes
        reading the answer as Arrow; the others' ends when the answer has arrived. Without
        K2 in process among the entries, answers are checked against its answer to the same pick
        in an earlier call.
        """
        for number, (pick, order) in enumerate(zip(picks, turns(entries, len(picks)), strict=True)):
            tables: dict[str, pa.Table] = {}
            for entry in order:
                if query is Query.EXPORT:
                    table, ms = timed_ms(partial(_as_arrow, entry.engine, query, pick))
                else:
                    answer, ms = timed_ms(partial(ask, entry.engine, query, pick))
                    table = answer.table()
                tables[entry.label] = table
                if number >= warmup:
                    self._record(query, entry.label, ms, int(table.num_rows))
            self._check(query, pick, tables)
