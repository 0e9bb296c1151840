"""The live-feed benchmark's side of the wire: pre-built Binance frames, served from a child process.

:class:`~k2.ingest.live.binance.server.BinanceServer` replays the frames of a file (no per-message
price generation) as fast as websockets can send them or at a steady pace, in a process of its own
pinned to a core of its own, so the feed under test has the other.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import DATA_DIR
from k2.ingest.live.binance.server import Behaviour, BinanceServer
from k2.ingest.live.binance.tapes import SyntheticTape, TapeEvent

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]


class _FrameTape:
    """Pre-built frames, sent verbatim: as fast as the server can (``rate`` None) or at ``rate``/s."""

    def __init__(self, frames: list[bytes], rate: float | None) -> None:
        self.symbols = list(SYMBOLS)
        self._frames = frames
        self._rate = rate
        self._next = 0
        self._started = 0.0

    async def next(self) -> TapeEvent | None:
        i = self._next
        if i >= len(self._frames):
            return None
        self._next = i + 1
        if self._rate:
            if i == 0:
                self._started = time.monotonic()
            delay = self._started + i / self._rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elif i % 256 == 0:
            await asyncio.sleep(0)  # let pings and the close handshake through
        return TapeEvent(None, None, self._frames[i])

    def skip_trades(self, symbol: str, count: int) -> list[dict[str, Any]]:
        return []


def _serve(path: str, rate: float | None, cpu: int | None, ports: Any) -> None:
    """The child process: serve the frames in ``path`` on a free port, until terminated."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    frames = Path(path).read_bytes().splitlines()

    async def main() -> None:
        tape = _FrameTape(frames, rate)
        async with BinanceServer(tape, Behaviour(ping_interval=None, ping_timeout=None)) as server:
            ports.put(server.port)
            await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def frame_server(path: Path, rate: float | None, cpu: int | None) -> Iterator[str]:
    """A server process for one run, serving the frames in ``path`` as fast as it can (``rate``
    None) or at ``rate`` a second, pinned to ``cpu``; yields its base WebSocket URL.
    """
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(str(path), rate, cpu, ports), daemon=True)
    process.start()
    try:
        port = ports.get(timeout=60)
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.join(10)


def frames_file(count: int) -> Path:
    """``count`` combined-stream frames (trade, book ticker, ... over the symbols), one a line."""
    path = DATA_DIR / f"feed-frames-{count}.jsonl"
    if not path.exists():
        tape = SyntheticTape(SYMBOLS, seed=11)
        steps = (tape.step() for _ in range(count))
        lines = [orjson.dumps({"stream": e.stream, "data": e.data}) for e in steps]
        path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@dataclass(frozen=True, slots=True)
class Cores:
    """The CPU the feed runs on and the CPU the server runs on (None: no pinning, one CPU)."""

    feed: int | None
    server: int | None


def cores() -> Cores:
    """The first CPU for the feed, the last for the server."""
    cpus = sorted(os.sched_getaffinity(0))
    return Cores(cpus[0], cpus[-1]) if len(cpus) > 1 else Cores(None, None)


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """This thread (and the threads it starts meanwhile: librdkafka's, the feed's) on ``cpu``."""
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
