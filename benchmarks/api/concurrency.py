"""Q6 of the API benchmark: ``CLIENTS`` concurrent clients on one-hour ``GET /v1/trades``.

Two series per placement of the clients: *distinct* requests (one-hour windows of a symbol-day's
session starting on any whole minute, none asked twice until all have been) and *repeated*
requests (a few picks, each asked once before the series, so the answer cache holds them). The
clients run first as threads of the benchmark's process, then as threads of a child process
(``benchmarks.api.load``); each placement gets a fresh ``k2 serve``, its row groups decoded by
one ``limit=1`` request per symbol-day before its series (so both find the row-group cache warm
and the answer cache empty), and each series' answer-cache look-ups are read from the server's
``/metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.api.load import PAGE_ROWS, Throughput, in_child, run_clients
from benchmarks.api.serving import ANSWERS, Client, Lookups, cache_counts, hour_params, serve, warm_row_groups
from benchmarks.common import percentile
from benchmarks.picks import Draw, HourPick, SymbolDay
from benchmarks.results import Measure, Target, Unit

CLIENTS = 8
REPEATED_PICKS = 8
RATE_TARGET = Target(200, Unit.REQUESTS_PER_SECOND)
LOADED_P99_TARGET = Target(100, Unit.MILLISECONDS)

Runner = Callable[[int, int, float, list[HourPick], int], Throughput]
PLACEMENTS: tuple[tuple[str, Runner], ...] = (
    ("in the benchmark's process", run_clients),
    ("in a child process", in_child),
)


@dataclass(frozen=True, slots=True)
class LoadSeries:
    """One series: where its clients ran, distinct or repeated, what they did, the picks they
    drew from and the answer cache's look-ups during it.
    """

    where: str
    kind: str
    done: Throughput
    picks: int
    answers: Lookups

    @property
    def name(self) -> str:
        """The series, for labels."""
        return f"{CLIENTS} clients {self.where}, {self.kind} requests"

    def measures(self, label: Callable[[str], str], limit: Throughput) -> list[Measure]:
        """Requests per second and p99 latency beside the limit's, with the targets; the labels
        say how many of the requests the answer cache answered.
        """
        hits = f"{self.answers.hits / max(1, self.answers.total):.0%} answer-cache hits"
        return [
            Measure(
                label(f"{self.name} ({hits}), `GET /v1/trades` 1 symbol x 1 hour: requests/s"),
                Unit.REQUESTS_PER_SECOND,
                self.done.rate,
                limit.rate,
                RATE_TARGET,
            ),
            Measure(
                label(f"{self.name} ({hits}): p99 latency ({len(self.done.latencies):,} requests)"),
                Unit.MILLISECONDS,
                percentile(self.done.latencies, 0.99),
                percentile(limit.latencies, 0.99),
                LOADED_P99_TARGET,
            ),
        ]

    def note(self) -> str:
        """What the series did and what its picks and the answer cache were."""
        requests = len(self.done.latencies)
        if self.kind == "distinct":
            picks = (
                f"each request drew one of the {self.picks:,} picks not requested before in the series "
                f"until all had been: {self.done.repeats:,} of {requests:,} requests repeated one"
            )
        else:
            picks = f"the same {self.picks} picks over and over, each asked once before the series"
        bad = f"; {self.done.bad} answers did NOT hold the rows they announced" if self.done.bad else ""
        return (
            f"{self.name}: {requests:,} requests in {self.done.seconds:.1f} s "
            f"({self.done.rows / self.done.seconds:,.0f} rows/s, p50 "
            f"{percentile(self.done.latencies, 0.5):,.0f} ms); {picks}; answer cache: {self.answers}{bad}."
        )


def _series(
    client: Client,
    *,
    where: str,
    kind: str,
    run: Runner,
    picks: list[HourPick],
    seconds: float,
    seed: int,
) -> LoadSeries:
    before = cache_counts(client)
    done = run(client.port, CLIENTS, seconds, picks, seed)
    return LoadSeries(where, kind, done, len(picks), (cache_counts(client) - before)[ANSWERS])


def measure(
    path: Path, space: list[HourPick], days: list[SymbolDay], seconds: float, seed: int
) -> list[LoadSeries]:
    """Both series, clients in this process then in a child, each placement on a fresh server."""
    found = []
    for number, (where, run) in enumerate(PLACEMENTS):
        with serve(path, f"load-{number}") as server, Client(server.port) as client:
            warm_row_groups(client, days)
            found.append(
                _series(
                    client, where=where, kind="distinct", run=run, picks=space, seconds=seconds, seed=seed
                )
            )
            hot = Draw(space, seed + 1).take(REPEATED_PICKS)
            for pick in hot:
                client.get("/v1/trades", hour_params(*pick, PAGE_ROWS))
            found.append(
                _series(client, where=where, kind="repeated", run=run, picks=hot, seconds=seconds, seed=seed)
            )
    return found
