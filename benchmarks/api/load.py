"""Q6: concurrent clients sending one-hour ``GET /v1/trades`` requests back to back.

Each client is a thread with its own keep-alive connection (``benchmarks.api.serving.Client``),
and all draw their picks from one :class:`~benchmarks.picks.Draw`: distinct until the picks run
out. The clients run in the calling process (:func:`run_clients`) or in a child process of
their own (:func:`in_child` runs ``python -m benchmarks.api.load``), whose Python work then
shares neither a GIL nor a garbage collector with the benchmark's large process.

    python -m benchmarks.api.load --port PORT --clients 8 --seconds 20 --seed 1 PICKS.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from benchmarks.api.serving import Client, hour_params, iso
from benchmarks.common import DATA_DIR, timed_ms
from benchmarks.ingest.runs import child_result
from benchmarks.measure import emit
from benchmarks.picks import Draw, HourPick

PAGE_ROWS = 5000


@dataclass
class Throughput:
    """Requests of concurrent clients: latencies (ms), rows, wall time, answers whose rows did
    not match their ``X-Record-Count`` and draws that repeated a pick.
    """

    latencies: list[float] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    bad: int = 0
    repeats: int = 0

    @property
    def rate(self) -> float:
        """Requests per second."""
        return len(self.latencies) / self.seconds

    def add(self, other: Throughput) -> None:
        """Count ``other``'s requests and rows in this one's."""
        self.latencies += other.latencies
        self.rows += other.rows
        self.bad += other.bad


def concurrently(client: Callable[[int, float], Throughput], clients: int, seconds: float) -> Throughput:
    """Run ``client(index, deadline)`` on ``clients`` threads until ``seconds`` have passed."""
    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(client, range(clients), [began + seconds] * clients))
    total = Throughput(seconds=time.perf_counter() - began)
    for part in parts:
        total.add(part)
    return total


def _client(port: int, draw: Draw[HourPick], _index: int, deadline: float) -> Throughput:
    done = Throughput()
    with Client(port) as client:
        while time.perf_counter() < deadline:
            reply, ms = timed_ms(partial(client.get, "/v1/trades", hour_params(*draw(), PAGE_ROWS)))
            rows = reply.body.count(b'"message_id":')
            done.bad += rows != int(reply.headers["x-record-count"])
            done.latencies.append(ms)
            done.rows += rows
    return done


def run_clients(port: int, clients: int, seconds: float, picks: list[HourPick], seed: int) -> Throughput:
    """``clients`` threads of this process asking for ``picks`` (drawn in a seeded order, each
    once before any comes again) for ``seconds``.
    """
    draw = Draw(picks, seed)
    done = concurrently(partial(_client, port, draw), clients, seconds)
    done.repeats = draw.repeats
    return done


def in_child(port: int, clients: int, seconds: float, picks: list[HourPick], seed: int) -> Throughput:
    """:func:`run_clients` in a child process (``python -m benchmarks.api.load``)."""
    path = DATA_DIR / f"api-load-picks-{os.getpid()}.json"
    path.write_text(json.dumps([[symbol, iso(start), iso(end)] for symbol, start, end in picks]))
    try:
        args = ("--port", port, "--clients", clients, "--seconds", seconds, "--seed", seed, path)
        result = child_result("benchmarks.api.load", *map(str, args))
    finally:
        path.unlink(missing_ok=True)
    return Throughput(
        [float(ms) for ms in result["latencies"]],
        int(result["rows"]),
        float(result["seconds"]),
        int(result["bad"]),
        int(result["repeats"]),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the clients and print their result for the parent."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("picks", type=Path, help="a JSON list of [symbol, start, end] (ISO-8601)")
    args = parser.parse_args(argv)
    picks = [
        (str(symbol), datetime.fromisoformat(start), datetime.fromisoformat(end))
        for symbol, start, end in json.loads(args.picks.read_text())
    ]
    emit(asdict(run_clients(args.port, args.clients, args.seconds, picks, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
