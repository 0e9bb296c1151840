"""Where the local Binance server's messages come from: a seeded synthetic market
(:class:`SyntheticTape`) or a recording (:class:`ReplayTape`, JSON lines of combined-stream frames,
replayed at a chosen speed), and :func:`write_sample` to make such a recording.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson

_EIGHT = Decimal("0.00000001")
_START_PRICES = {"BTC": Decimal("60000"), "ETH": Decimal("3000"), "BNB": Decimal("550")}


@dataclass(frozen=True, slots=True)
class TapeEvent:
    """One message of a tape: its stream and payload, or a frame replayed verbatim (``raw``)."""

    stream: str | None
    data: dict[str, Any] | None
    raw: bytes | None = None


class Tape(Protocol):
    """Where the server's messages come from."""

    symbols: list[str]

    async def next(self) -> TapeEvent | None:
        """The next message, after waiting for its time; ``None`` when the tape has ended."""
        ...

    def skip_trades(self, symbol: str, count: int) -> list[dict[str, Any]]:
        """Advance ``symbol``'s trade ids by ``count`` without sending; the skipped trade payloads."""
        ...


@dataclass
class _Book:
    trade_id: int
    update_id: int
    price: Decimal


class SyntheticTape:
    """A seeded random-walk market: per symbol, trades with consecutive ids and book tickers.

    Args:
        symbols: pairs, e.g. ``["BTCUSDT", "ETHUSDT"]``.
        total: messages before the tape ends (``None``: never).
        rate: messages per second (``None``: as fast as the client reads).
        seed: the random seed; the same seed gives the same prices, sizes and sides.
        clock_ms: the event clock; wall-clock milliseconds unless given.
        first_trade_id: the first trade id of every symbol.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        total: int | None = None,
        rate: float | None = None,
        seed: int = 7,
        clock_ms: Callable[[], int] | None = None,
        first_trade_id: int = 1_000_000,
    ) -> None:
        self.symbols = [s.upper() for s in symbols]
        self._total = total
        self._interval = 1 / rate if rate else 0.0
        self._rng = random.Random(seed)  # noqa: S311 - market noise, not a secret
        self._clock = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._books = {
            s: _Book(first_trade_id, 10 * first_trade_id, _START_PRICES.get(s[:3], Decimal("10")))
            for s in self.symbols
        }
        self.produced = 0

    async def next(self) -> TapeEvent | None:
        """The next trade or book ticker, at the tape's rate."""
        if self._total is not None and self.produced >= self._total:
            return None
        await asyncio.sleep(self._interval)
        return self.step()

    def step(self) -> TapeEvent:
        """The next trade or book ticker at once, round-robin over symbols (trade, quote, ...)."""
        n = self.produced
        self.produced += 1
        symbol = self.symbols[(n // 2) % len(self.symbols)]
        if n % 2 == 0:
            return TapeEvent(f"{symbol.lower()}@trade", self._trade(symbol))
        return TapeEvent(f"{symbol.lower()}@bookTicker", self._book_ticker(symbol))

    def skip_trades(self, symbol: str, count: int) -> list[dict[str, Any]]:
        """Trades of ``symbol`` that happen but are never sent."""
        return [self._trade(symbol) for _ in range(count)] if symbol in self._books else []

    def _trade(self, symbol: str) -> dict[str, Any]:
        book = self._books[symbol]
        book.price = max(_EIGHT, book.price + Decimal(self._rng.randint(-5, 5)) / 100)
        qty = Decimal(self._rng.randint(1, 500_000)) / 100_000
        now = self._clock()
        trade = {
            "e": "trade",
            "E": now,
            "s": symbol,
            "t": book.trade_id,
            "p": decimal_text(book.price),
            "q": decimal_text(qty),
            "T": now,
            "m": self._rng.random() < 0.5,
            "M": True,
        }
        book.trade_id += 1
        return trade

    def _book_ticker(self, symbol: str) -> dict[str, Any]:
        book = self._books[symbol]
        book.update_id += self._rng.randint(1, 5)
        spread = Decimal(self._rng.randint(1, 4)) / 100
        return {
            "u": book.update_id,
            "s": symbol,
            "b": decimal_text(book.price - spread),
            "B": decimal_text(Decimal(self._rng.randint(1, 900_000)) / 100_000),
            "a": decimal_text(book.price + spread),
            "A": decimal_text(Decimal(self._rng.randint(1, 900_000)) / 100_000),
        }


class ReplayTape:
    """Recorded combined-stream frames, one JSON object a line, replayed at ``speed`` times the
    recorded pace (event times ``E``/``T``; a frame without one keeps the pace of the one before).
    Lines that are not frames are replayed verbatim.

    With ``retime`` the recorded times are shifted so the first frame happens now, as if the
    recording were live (lag and "recent" reads then make sense); trade ids, and so message ids,
    stay as recorded.
    """

    def __init__(self, lines: Iterable[bytes], *, speed: float = 1.0, retime: bool = False) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._events: deque[tuple[TapeEvent, int | None]] = deque()
        symbols: dict[str, None] = {}
        for line in lines:
            if not line.strip():
                continue
            event, at_ms = _recorded(line.strip())
            if event.data is not None and isinstance(event.data.get("s"), str):
                symbols.setdefault(event.data["s"].upper())
            self._events.append((event, at_ms))
        self.symbols = list(symbols)
        self.total = len(self._events)
        self._speed = speed
        self._retime = retime
        self._anchor: tuple[float, int] | None = None  # (wall clock, recorded ms) of the first timed frame

    @classmethod
    def from_file(cls, path: Path, *, speed: float = 1.0, retime: bool = False) -> ReplayTape:
        """The recording in ``path``."""
        with path.open("rb") as f:
            return cls(f.readlines(), speed=speed, retime=retime)

    async def next(self) -> TapeEvent | None:
        """The next recorded frame, at its recorded offset from the first divided by the speed."""
        if not self._events:
            return None
        event, at_ms = self._events.popleft()
        if at_ms is None:
            await asyncio.sleep(0)
        elif self._anchor is None:
            self._anchor = (time.monotonic(), at_ms)
        else:
            due = self._anchor[0] + (at_ms - self._anchor[1]) / 1000 / self._speed
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        if self._retime and self._anchor is not None and event.data is not None:
            shift = time.time_ns() // 1_000_000 - (at_ms if at_ms is not None else self._anchor[1])
            data = {
                k: v + shift if k in ("E", "T") and isinstance(v, int) else v for k, v in event.data.items()
            }
            event = TapeEvent(event.stream, data)
        return event

    def skip_trades(self, symbol: str, count: int) -> list[dict[str, Any]]:
        """Drop the next ``count`` recorded trades of ``symbol``; the dropped payloads."""
        stream = f"{symbol.lower()}@trade"
        skipped: list[dict[str, Any]] = []
        kept: deque[tuple[TapeEvent, int | None]] = deque()
        for event, at_ms in self._events:
            if len(skipped) < count and event.stream == stream and event.data is not None:
                skipped.append(event.data)
            else:
                kept.append((event, at_ms))
        self._events = kept
        return skipped


def _recorded(line: bytes) -> tuple[TapeEvent, int | None]:
    try:
        frame = orjson.loads(line)
    except orjson.JSONDecodeError:
        return TapeEvent(None, None, line), None
    if not (
        isinstance(frame, dict)
        and isinstance(frame.get("stream"), str)
        and isinstance(frame.get("data"), dict)
    ):
        return TapeEvent(None, None, line), None
    data = frame["data"]
    at = data.get("E", data.get("T"))
    return TapeEvent(frame["stream"], data), at if isinstance(at, int) else None


def decimal_text(value: Decimal) -> str:
    """A decimal as Binance writes it: fixed point, eight places."""
    return format(value.quantize(_EIGHT), "f")


def write_sample(
    path: Path,
    *,
    symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT", "BNBUSDT"),
    messages: int = 1000,
    start_ms: int = 1_717_200_000_000,
    interval_ms: int = 10,
    seed: int = 7,
) -> Path:
    """Write a recorded feed sample: ``messages`` combined-stream frames, one JSON object a line,
    trades ``interval_ms`` apart from ``start_ms`` (book tickers carry no time, as on Binance).
    Deterministic for the same arguments.
    """
    clock = itertools.count(start_ms, interval_ms)
    tape = SyntheticTape(symbols, seed=seed, clock_ms=lambda: next(clock))
    lines = [
        orjson.dumps({"stream": e.stream, "data": e.data}) for e in (tape.step() for _ in range(messages))
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
