"""A local server that speaks Binance's public market-stream protocol, for tests and offline demos.

It serves combined streams (``/stream?streams=btcusdt@trade/btcusdt@bookTicker``, frames
``{"stream": ..., "data": ...}``) and raw streams (``/ws/btcusdt@trade``), sends trade and
bookTicker payloads with Binance's fields, pings like Binance does, and answers the REST
recent-trades call ``GET /api/v3/trades?symbol=...&limit=...`` on the same port from the trades it
has produced (sent or skipped). Its messages come from a :class:`Tape`: a seeded synthetic
market (:class:`SyntheticTape`) or a recording (:class:`ReplayTape`, JSON lines of combined-stream
frames, replayed at a chosen speed). One tape is shared by all connections, so a client that
reconnects continues where it left off.

A :class:`Behaviour` makes it misbehave the ways a real network and venue do: close after N
messages, go silent (no data, no pongs), send malformed frames, skip trade ids across a reconnect
(a gap the REST call can fill), or fail the REST call.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import random
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from k2.ingest.feed import BinanceFeed
from k2.ingest.feed_sink import FeedSink
from k2.ingest.feed_status import FeedStats, StatusCallback, run_until_signalled
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings

#: Trades per symbol the REST call can still see; Binance keeps far more, but a test's windows are small.
HISTORY_TRADES = 5000
#: Binance's default and largest ``limit`` of ``/api/v3/trades``.
REST_DEFAULT_LIMIT = 500
REST_MAX_LIMIT = 1000
STREAM_KINDS = ("trade", "bookTicker")
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
            "p": _text(book.price),
            "q": _text(qty),
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
            "b": _text(book.price - spread),
            "B": _text(Decimal(self._rng.randint(1, 900_000)) / 100_000),
            "a": _text(book.price + spread),
            "A": _text(Decimal(self._rng.randint(1, 900_000)) / 100_000),
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


@dataclass
class Behaviour:
    """How the server misbehaves; the defaults behave like Binance on a good day.

    Attributes:
        disconnect_after: close every connection after sending this many messages.
        silent_after: after this many messages, send nothing and stop reading (so pings go
            unanswered), for the first ``silent_connections`` connections.
        silent_connections: how many connections go silent.
        silent_for_s: how long a silent connection stays open before the server drops it.
        malformed: frames sent once each, one after every ``malformed_every`` messages.
        malformed_every: messages between two malformed frames.
        skip_on_reconnect: trade ids each symbol skips before every connection after the first.
        ping_interval: seconds between the server's pings (Binance: 20).
        ping_timeout: seconds the server waits for a pong before it closes (Binance: 60).
        rest_status: the status of the REST call; anything but 200 is an error answer.
    """

    disconnect_after: int | None = None
    silent_after: int | None = None
    silent_connections: int = 1
    silent_for_s: float = 30.0
    malformed: tuple[bytes, ...] = ()
    malformed_every: int = 10
    skip_on_reconnect: int = 0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 60.0
    rest_status: int = 200


@dataclass
class ServerStats:
    """What the server did: connections accepted, frames sent, REST calls answered."""

    connections: int = 0
    sent: int = 0
    malformed_sent: int = 0
    skipped_trades: int = 0
    rest_calls: int = 0
    paths: list[str] = field(default_factory=list)


class BinanceServer:
    """The local Binance stream server; an async context manager.

    Args:
        tape: where messages come from.
        behaviour: how it misbehaves.
        host: interface to listen on.
        port: TCP port; 0 picks a free one (see :attr:`port`).
    """

    def __init__(
        self, tape: Tape, behaviour: Behaviour | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.tape = tape
        self.behaviour = behaviour or Behaviour()
        self.stats = ServerStats()
        self.finished = asyncio.Event()
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._malformed = deque(self.behaviour.malformed)
        self._lock = asyncio.Lock()
        self._closing = False

    async def __aenter__(self) -> BinanceServer:
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._process_request,
            ping_interval=self.behaviour.ping_interval,
            ping_timeout=self.behaviour.ping_timeout,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def ws_url(self) -> str:
        """The base URL of the streams, as ``K2_BINANCE_WS_URL`` takes it."""
        return f"ws://{self._host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The base URL of the REST call, as ``K2_BINANCE_REST_URL`` takes it."""
        return f"http://{self._host}:{self.port}"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/api/v3/trades":
            return self._recent_trades(connection, parse_qs(url.query))
        try:
            parse_stream_path(request.path)
        except ValueError as exc:
            return _json(connection, http.HTTPStatus.BAD_REQUEST, {"code": -1100, "msg": str(exc)})
        return None

    def _recent_trades(self, connection: ServerConnection, query: dict[str, list[str]]) -> Response:
        self.stats.rest_calls += 1
        if self.behaviour.rest_status != http.HTTPStatus.OK:
            status = http.HTTPStatus(self.behaviour.rest_status)
            return _json(connection, status, {"code": -1003, "msg": status.phrase})
        symbol = query.get("symbol", [""])[0].upper()
        try:
            limit = int(query.get("limit", [str(REST_DEFAULT_LIMIT)])[0])
        except ValueError:
            limit = 0
        if symbol not in self.tape.symbols or not 1 <= limit <= REST_MAX_LIMIT:
            return _json(connection, http.HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."})
        trades = list(self._history.get(symbol, ()))[-limit:]
        return _json(connection, http.HTTPStatus.OK, trades)

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        streams, combined = parse_stream_path(path)
        b = self.behaviour
        async with self._lock:  # a connection's position on the shared tape is decided at once
            index = self.stats.connections
            self.stats.connections += 1
            self.stats.paths.append(path)
            if index > 0 and b.skip_on_reconnect:
                for symbol in self.tape.symbols:
                    skipped = self.tape.skip_trades(symbol, b.skip_on_reconnect)
                    self.stats.skipped_trades += len(skipped)
                    for trade in skipped:
                        self._remember(trade)
        silent = b.silent_after is not None and index < b.silent_connections
        sent = 0
        with contextlib.suppress(ConnectionClosed):
            while True:
                if b.disconnect_after is not None and sent >= b.disconnect_after:
                    await ws.close(1001, "going away")
                    return
                if silent and b.silent_after is not None and sent >= b.silent_after:
                    await self._go_silent(ws)
                    return
                event = await self.tape.next()
                if event is None:
                    self.finished.set()
                    await ws.wait_closed()
                    return
                if event.data is not None and event.stream is not None and event.stream.endswith("@trade"):
                    self._remember(event.data)
                frame = _frame(event, streams, combined=combined)
                if frame is None:
                    continue
                await ws.send(frame, text=True)
                sent += 1
                self.stats.sent += 1
                await self._maybe_malformed(ws)

    async def _go_silent(self, ws: ServerConnection) -> None:
        """Send nothing and read nothing (so pings go unanswered) for ``silent_for_s``, then drop
        the connection. With reading paused the server cannot see the client leave, so it drops
        the connection itself then, or when the server closes.
        """
        ws.transport.pause_reading()
        until = time.monotonic() + self.behaviour.silent_for_s
        while time.monotonic() < until and not self._closing:
            await asyncio.sleep(0.05)
        ws.transport.abort()

    async def _maybe_malformed(self, ws: ServerConnection) -> None:
        if self._malformed and self.stats.sent % self.behaviour.malformed_every == 0:
            bad = self._malformed.popleft()
            try:
                await ws.send(bad.decode(), text=True)
            except UnicodeDecodeError:
                await ws.send(bad, text=False)
            self.stats.malformed_sent += 1

    def _remember(self, trade: dict[str, Any]) -> None:
        """Keep a trade for the REST call, in its shape (``id, price, qty, time, isBuyerMaker``)."""
        symbol = str(trade.get("s", "")).upper()
        history = self._history.setdefault(symbol, deque(maxlen=HISTORY_TRADES))
        try:
            quote_qty = _text(Decimal(trade["p"]) * Decimal(trade["q"]))
        except (KeyError, ArithmeticError, TypeError, ValueError):
            return  # a deliberately malformed recorded trade has no REST form
        history.append(
            {
                "id": trade["t"],
                "price": trade["p"],
                "qty": trade["q"],
                "quoteQty": quote_qty,
                "time": trade["T"],
                "isBuyerMaker": trade["m"],
                "isBestMatch": True,
            }
        )


def parse_stream_path(path: str) -> tuple[set[str], bool]:
    """The streams a request path asks for, and whether they are combined.

    ``/stream?streams=a/b`` is combined; ``/ws/a`` or ``/ws/a/b`` is raw.

    Raises:
        ValueError: the path is neither, or names a stream the server does not serve.
    """
    url = urlsplit(path)
    if url.path == "/stream":
        names = parse_qs(url.query).get("streams", [""])[0].split("/")
        combined = True
    elif url.path.startswith("/ws/"):
        names = url.path.removeprefix("/ws/").split("/")
        combined = False
    else:
        raise ValueError(f"no such endpoint: {url.path}")
    streams = {n for n in names if n}
    if not streams:
        raise ValueError("no streams requested")
    for name in streams:
        symbol, _, kind = name.partition("@")
        if kind not in STREAM_KINDS or not symbol.isalnum() or symbol != symbol.lower():
            raise ValueError(f"Invalid stream name {name!r}")
    return streams, combined


def _frame(event: TapeEvent, streams: set[str], *, combined: bool) -> str | None:
    if event.raw is not None:
        return event.raw.decode(errors="replace")
    if event.stream not in streams:
        return None
    if combined:
        return orjson.dumps({"stream": event.stream, "data": event.data}).decode()
    return orjson.dumps(event.data).decode()


def _json(connection: ServerConnection, status: http.HTTPStatus, body: object) -> Response:
    response = connection.respond(status, orjson.dumps(body).decode())
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _text(value: Decimal) -> str:
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


#: Seconds without a new message after the tape ended before a replay stops anyway.
REPLAY_IDLE_S = 2.0


async def _stop_when_replayed(server: BinanceServer, feed: BinanceFeed, stop: asyncio.Event) -> None:
    """Set ``stop`` once the tape ended and the feed has read every frame sent (or went quiet)."""
    await server.finished.wait()
    seen, quiet_since = -1, time.monotonic()
    while not stop.is_set():
        received = feed.stats.messages + feed.stats.malformed
        if received >= server.stats.sent + server.stats.malformed_sent and feed.buffered == 0:
            break
        if received != seen:
            seen, quiet_since = received, time.monotonic()
        elif time.monotonic() - quiet_since >= REPLAY_IDLE_S:
            break
        await asyncio.sleep(0.05)
    stop.set()


async def replay(
    settings: K2Settings,
    path: Path,
    sink: FeedSink,
    metrics: K2Metrics,
    *,
    speed: float = 1.0,
    retime: bool = False,
    port: int = 0,
    on_listen: Callable[[BinanceServer], None] | None = None,
    on_tick: StatusCallback | None = None,
) -> FeedStats:
    """Replay a recording through a local server and stream it with the real feed into ``sink``.

    The feed connects to the server exactly as to Binance (``settings.binance`` with the server's
    URLs and the recording's symbols), so the run exercises the whole client. Stops when the
    recording has been read, or on SIGINT/SIGTERM.

    Args:
        settings: K2's settings.
        path: JSON lines of combined-stream frames (see :func:`write_sample`).
        sink: where rows go, e.g. :class:`~k2.ingest.feed_sink.KafkaFeedSink`.
        metrics: where the feed counts.
        speed: how many times faster than recorded.
        retime: shift the recorded times so the replay happens now.
        port: the server's port; 0 picks a free one.
        on_listen: called once the server listens.
        on_tick: the feed's status callback.

    Returns:
        What the feed did.
    """
    tape = ReplayTape.from_file(path, speed=speed, retime=retime)
    async with BinanceServer(tape, port=port) as server:
        if on_listen is not None:
            on_listen(server)
        binance = settings.binance.model_copy(
            update={"ws_url": server.ws_url, "rest_url": server.rest_url, "symbols": tape.symbols}
        )
        feed = BinanceFeed(binance, sink, metrics)
        stop = asyncio.Event()
        finisher = asyncio.create_task(_stop_when_replayed(server, feed, stop))
        try:
            return await run_until_signalled(feed, stop=stop, on_tick=on_tick)
        finally:
            finisher.cancel()


async def serve_until_signalled(server: BinanceServer) -> None:
    """Keep ``server`` running until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
