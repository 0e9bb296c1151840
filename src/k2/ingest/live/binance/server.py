"""A local server that speaks Binance's public market-stream protocol, for tests and offline demos.

It serves combined streams (``/stream?streams=btcusdt@trade/btcusdt@bookTicker``, frames
``{"stream": ..., "data": ...}``) and raw streams (``/ws/btcusdt@trade``), sends trade and
bookTicker payloads with Binance's fields, pings like Binance does, and answers the REST
recent-trades call ``GET /api/v3/trades?symbol=...&limit=...`` on the same port from the trades it
has produced (sent or skipped). Its messages come from a :class:`~k2.ingest.live.binance.tapes.Tape`
(:mod:`k2.ingest.live.binance.tapes`: a seeded synthetic market or a recording). One tape is shared by
all connections, so a client that reconnects continues where it left off.

A :class:`Behaviour` makes it misbehave the ways a real network and venue do: close after N
messages, go silent (no data, no pongs), send malformed frames, skip trade ids across a reconnect
(a gap the REST call can fill), or fail the REST call.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from k2.ingest.live.binance.feed import BinanceFeed
from k2.ingest.live.binance.tapes import ReplayTape, Tape, TapeEvent, decimal_text
from k2.ingest.live.output import FeedOutput
from k2.ingest.live.status import FeedStats, StatusCallback, run_until_signalled
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings

#: Trades per symbol the REST call can still see; Binance keeps far more, but a test's windows are small.
HISTORY_TRADES = 5000
#: Binance's default and largest ``limit`` of ``/api/v3/trades``.
REST_DEFAULT_LIMIT = 500
REST_MAX_LIMIT = 1000
STREAM_KINDS = ("trade", "bookTicker")


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
            quote_qty = decimal_text(Decimal(trade["p"]) * Decimal(trade["q"]))
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


async def playback(
    settings: K2Settings,
    path: Path,
    output: FeedOutput,
    metrics: K2Metrics,
    *,
    speed: float = 1.0,
    retime: bool = False,
    port: int = 0,
    on_listen: Callable[[BinanceServer], None] | None = None,
    on_tick: StatusCallback | None = None,
) -> FeedStats:
    """Play a recording back through a local server and stream it with the real feed into ``output``.

    The feed connects to the server exactly as to Binance (``settings.binance`` with the server's
    URLs and the recording's symbols), so the run exercises the whole client. Stops when the
    recording has been read, or on SIGINT/SIGTERM.

    Args:
        settings: K2's settings.
        path: JSON lines of combined-stream frames (see :func:`write_sample`).
        output: where rows go, e.g. :class:`~k2.ingest.live.output.KafkaFeedOutput`.
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
        feed = BinanceFeed(binance, output, metrics)
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
