"""``k2 stream``: run the Kafka → Iceberg sink, the live Binance feed, and offline feed replays."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.text import Text

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, console, render_one

if TYPE_CHECKING:
    from k2.ingest.live.status import FeedStats, StatusCallback

MetricsPortOption = Annotated[
    int | None, typer.Option(help="Serve Prometheus metrics on this port (K2_OBS_METRICS_PORT).")
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format of the report.")]

app = typer.Typer(
    help="Stream market data: live feeds into Kafka, Kafka into the lake.", no_args_is_help=True
)


@app.command()
@catch_errors
def run(
    ctx: typer.Context,
    until_idle: Annotated[
        float | None,
        typer.Option(min=0.5, help="Stop after this many seconds without a message (default: run forever)."),
    ] = None,
    metrics_port: MetricsPortOption = None,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Consume every market data topic into the lake, exactly once; SIGINT/SIGTERM commit and stop."""
    from k2.cli._metrics import served_metrics
    from k2.lake.writer import LakeWriter
    from k2.stream.sink import Sink

    cli = context(ctx)
    settings = cli.settings
    metrics = served_metrics(settings, "sink", metrics_port or settings.obs.metrics_port)
    writer = LakeWriter(cli.catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    report = Sink(settings, writer, metrics).run(stop, idle_exit_s=until_idle)
    render_one(asdict(report), fmt, title="stream sink")


class _StatusLine:
    """The feed's live status on one line of stderr: messages/s, reconnects, gaps, lag, buffer."""

    def __init__(self, live: Live) -> None:
        self._live = live
        self._last: tuple[float, int] | None = None
        self._rate = 0.0

    def __call__(self, stats: FeedStats) -> None:
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            self._rate = (stats.messages - self._last[1]) / (now - self._last[0])
        self._last = (now, stats.messages)
        lag = "-" if stats.lag_s is None else f"{stats.lag_s * 1000:.0f} ms"
        if stats.connected:
            state = "[green]connected[/green]"
        else:
            state = "[yellow]reconnecting[/yellow]" if stats.connections else "[yellow]connecting[/yellow]"
        buffer = f"{stats.buffered}/{stats.buffer_limit}"
        if stats.backpressured:
            buffer = f"[red]{buffer} FULL (reading paused)[/red]"
        self._live.update(
            Text.from_markup(
                f"{state}  {self._rate:,.0f} msg/s  trades {stats.trades:,}  quotes {stats.quotes:,}  "
                f"reconnects {stats.reconnects}  gaps {stats.gaps} "
                f"(backfilled {stats.backfilled:,}, lost {stats.lost:,})  "
                f"malformed {stats.malformed}  lag {lag}  buffer {buffer}"
            )
        )


@contextmanager
def _status_line() -> Iterator[StatusCallback | None]:
    """A live status line while on a terminal; nothing otherwise."""
    err = console(stderr=True)
    if not err.is_terminal:
        yield None
        return
    with Live(console=err, refresh_per_second=4, transient=False) as live:
        yield _StatusLine(live)


def _speed(text: str) -> float:
    try:
        value = float(text.strip().lower().removesuffix("x"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a speed such as 10x") from None
    if value <= 0:
        raise typer.BadParameter("the speed must be positive")
    return value


@app.command()
@catch_errors
def binance(
    ctx: typer.Context,
    symbols: Annotated[
        str | None,
        typer.Option(help="Pairs to stream, comma-separated (K2_BINANCE_SYMBOLS), e.g. BTCUSDT,ETHUSDT."),
    ] = None,
    metrics_port: MetricsPortOption = None,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Stream Binance trades and best bid/ask into Kafka until SIGINT/SIGTERM, then flush."""
    from pydantic import ValidationError

    from k2.cli._metrics import served_metrics
    from k2.errors import InvalidInputError
    from k2.ingest.live.binance.feed import stream_binance
    from k2.settings import BinanceSettings

    settings = context(ctx).settings
    if symbols is not None:
        try:
            chosen = BinanceSettings(**{**settings.binance.model_dump(), "symbols": symbols})
        except ValidationError as exc:
            raise InvalidInputError(f"--symbols: {exc.errors()[0]['msg']}") from None
        settings = settings.model_copy(update={"binance": chosen})
    metrics = served_metrics(settings, "feed", metrics_port or settings.obs.metrics_port)
    with _status_line() as status:
        stats = stream_binance(settings, metrics, on_tick=status)
    render_one(stats.as_dict(), fmt, title="binance feed")


@catch_errors
def playback(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSON lines of combined-stream frames.")
    ],
    speed: Annotated[str, typer.Option(help="Replay this many times faster than recorded, e.g. 10x.")] = "1x",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the local server (0: any free).")] = 0,
    retime: Annotated[
        bool,
        typer.Option("--retime/--keep-times", help="Shift recorded times to now, as if live (default)."),
    ] = True,
    serve_only: Annotated[
        bool,
        typer.Option(
            help="Only run the server (for `k2 stream binance` with K2_BINANCE_WS_URL) until SIGINT."
        ),
    ] = False,
    kafka: Annotated[
        bool, typer.Option(help="Produce to Kafka; --no-kafka normalises and counts only (offline demo).")
    ] = True,
    metrics_port: MetricsPortOption = None,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Play recorded Binance frames back through a local Binance-protocol server and the live feed.

    (Not to be confused with ``/v1/replay``, which replays the lake's history; ``k2 stream replay``
    is this command's old name, kept hidden for one release.)
    """
    import asyncio

    from k2.cli._metrics import served_metrics
    from k2.ingest.live.binance import server as binance_server
    from k2.ingest.live.binance import tapes as binance_tapes
    from k2.ingest.live.binance.protocol import EXCHANGE
    from k2.ingest.live.output import CountingOutput, FeedOutput, KafkaFeedOutput

    settings = context(ctx).settings
    factor = _speed(speed)
    err = console(stderr=True)
    if serve_only:

        async def serve() -> None:
            tape = binance_tapes.ReplayTape.from_file(file, speed=factor, retime=retime)
            async with binance_server.BinanceServer(tape, port=port) as server:
                err.print(f"serving {file} on {server.ws_url} (REST {server.rest_url}); Ctrl-C stops")
                await binance_server.serve_until_signalled(server)

        asyncio.run(serve())
        return
    metrics = served_metrics(settings, "feed", metrics_port or settings.obs.metrics_port)
    counting = CountingOutput()
    with ExitStack() as stack:
        output: FeedOutput = counting
        if kafka:
            output = stack.enter_context(
                KafkaFeedOutput(
                    settings.kafka, metrics, exchange=EXCHANGE, linger_ms=settings.binance.producer_linger_ms
                )
            )
        status = stack.enter_context(_status_line())
        played = binance_server.playback(
            settings, file, output, metrics, speed=factor, retime=retime, port=port, on_tick=status
        )
        stats = asyncio.run(played)
    report = stats.as_dict()
    if not kafka:
        report["counted_rows"] = dict(counting.rows)
    render_one(report, fmt, title="playback")


app.command("playback")(playback)
app.command("replay", hidden=True, deprecated=True)(playback)
