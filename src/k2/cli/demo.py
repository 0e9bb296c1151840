"""``k2 demo``: load demo data into the embedded lake and show what can be asked of it; with
``--live``, stream a generated Binance recording through Kafka into the platform's lake.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, console, render, render_one
from k2.settings import K2Settings

if TYPE_CHECKING:
    from datetime import datetime

app = typer.Typer()

#: Messages of the live demo's recording (trades and book tickers, half each), and its replay speed.
LIVE_MESSAGES = 3_000
LIVE_SPEED = 10.0
#: The live demo's sink stops after this many seconds without a message.
LIVE_IDLE_S = 3.0
#: Recent trades the live demo shows.
LIVE_TRADES = 10


@app.command()
@catch_errors
def demo(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option(min=1, help="Synthetic symbols.")] = 6,
    days: Annotated[int, typer.Option(min=1, help="Synthetic weekdays.")] = 5,
    trades_per_day: Annotated[int, typer.Option(min=1, help="Trades per symbol and day.")] = 20_000,
    serve: Annotated[bool, typer.Option(help="Then serve the lake over HTTP with a demo API key.")] = False,
    live: Annotated[
        bool,
        typer.Option(
            help="Instead: replay a generated Binance recording into Kafka, land it in the platform's "
            "lake with the sink, and query the recent trades (needs `make platform-up`)."
        ),
    ] = False,
) -> None:
    """Generate a week of synthetic ticks into the lake, then tour the queries."""
    from k2.cli.ingest import run_load
    from k2.domain.bars import Interval
    from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
    from k2.query import BarQuery, TickQuery, bars, daily_summary, stats, trades

    cli = context(ctx)
    out = console()
    if live:
        _live(cli.settings, out)
        return
    out.rule("[bold]K2 demo[/bold]")
    out.print(f"Lake: [cyan]{cli.settings.data_dir.resolve()}[/cyan] (SQLite catalog, local warehouse)")
    market = SyntheticMarket(symbols=symbols, days=days, trades_per_day=trades_per_day)
    run_load(cli, lambda _, rows, at: SyntheticSource(market, batch_rows=rows, ingested_at=at), Format.TEXT)
    engine = cli.engine
    symbol, day = market.symbols[0], market.days[0]
    out.rule("What the lake holds")
    render(stats(engine), Format.TEXT)
    out.rule(f"First trades of {symbol}  (k2 query trades -s {symbol} -n 5)")
    page = trades(engine, TickQuery(symbols=(symbol,), limit=5))
    render(page.rows.select(["timestamp", "symbol", "price", "quantity", "side", "trade_id"]), Format.TEXT)
    out.rule(f"Daily summary  (k2 query summary {symbol} {day})")
    summary = daily_summary(engine, symbol, day, "SYN")
    if summary is not None:
        render_one(summary, Format.TEXT)
    out.rule(f"Hourly bars, venue-local hours  (k2 query bars -s {symbol} -i 1h)")
    hourly = bars(engine, BarQuery(Interval.parse("1h"), symbols=(symbol,), exchange="SYN"))
    render(
        hourly.slice(0, 7).select(["interval_start", "open", "high", "low", "close", "volume", "vwap"]),
        Format.TEXT,
    )
    if serve:
        _serve(cli.settings, out)
        return
    out.rule("Next")
    out.print(
        "k2 query symbols | k2 query snapshots | k2 lake tag audit-1 | "
        "k2 query trades --as-of-tag audit-1 | k2 ingest asx ../shared/data/asx-sample"
    )


def _serve(settings: K2Settings, out: Console) -> None:
    """Serve the demo lake with a key kept in the data directory (made on first use)."""
    from k2.cli.serve import run_server

    key_file = settings.data_dir / "demo-api-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(24))
        key_file.chmod(0o600)
    key = key_file.read_text().strip()
    url = f"http://{settings.api.host}:{settings.api.port}"
    out.rule("Serving")
    out.print(f"Console:   [cyan]{url}/ui/[/cyan]   (it asks for the API key below)")
    out.print(f"API docs:  [cyan]{url}/docs[/cyan]")
    out.print(f"API key:   [bold]{key}[/bold]   (header X-API-Key; kept in {key_file})")
    out.print(f"Try:       curl -H 'X-API-Key: {key}' '{url}/v1/trades?limit=5'")
    out.print("Stop with Ctrl-C.")
    run_server(settings, api_keys=f"demo:{key}")


def _live(settings: K2Settings, out: Console) -> None:
    """Replay a generated recording through the Binance client into Kafka (as ``k2 stream playback``
    does), run the sink until it is idle (``k2 stream run --until-idle``), and show the recent trades.

    Raises:
        ConfigurationError: the platform is not running.
    """
    import asyncio
    import threading
    from datetime import UTC, datetime, timedelta

    from prometheus_client import CollectorRegistry

    from k2.errors import ConfigurationError
    from k2.ingest.live.binance import server as binance_server
    from k2.ingest.live.binance.protocol import EXCHANGE
    from k2.ingest.live.output import KafkaFeedOutput
    from k2.lake.catalog import close_catalog, open_catalog
    from k2.lake.writer import LakeWriter
    from k2.obs.metrics import K2Metrics
    from k2.platform import stack
    from k2.query import TickQuery, trades
    from k2.query.engine import QueryEngine
    from k2.settings import Profile
    from k2.stream.sink import Sink

    if settings.profile is not Profile.PLATFORM:
        settings = settings.on_profile(Profile.PLATFORM)
    down = [h.name for h in stack.status(settings) if not h.running]
    if down:
        raise ConfigurationError(
            f"the platform is not running ({', '.join(down)}): start it with `make platform-up`"
        )
    out.rule("[bold]K2 live demo[/bold]")
    started = datetime.now(UTC)
    sample = _live_sample(settings.data_dir / "demo-live.jsonl", started)
    out.print(
        f"Recording: [cyan]{sample}[/cyan] ({LIVE_MESSAGES:,} Binance frames), replayed at {LIVE_SPEED:g}x "
        f"through a local Binance-protocol server into Kafka at {settings.kafka.bootstrap_servers}"
    )
    metrics = K2Metrics(CollectorRegistry())
    with KafkaFeedOutput(
        settings.kafka, metrics, exchange=EXCHANGE, linger_ms=settings.binance.producer_linger_ms
    ) as sink:
        played = binance_server.playback(settings, sample, sink, metrics, speed=LIVE_SPEED, retime=True)
        stats = asyncio.run(played)
    out.print(
        f"Feed: {stats.trades:,} trades and {stats.quotes:,} quotes produced ({stats.produced:,} messages)"
    )
    out.rule("Sink: Kafka → Iceberg  (k2 stream run --until-idle 3)")
    catalog = open_catalog(settings)
    try:
        writer = LakeWriter(catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
        report = Sink(settings, writer, metrics).run(threading.Event(), idle_exit_s=LIVE_IDLE_S)
        out.print(
            f"Sink: {report.messages:,} messages consumed, {report.rows_written:,} rows landed in "
            f"{report.commits} commit(s), {report.duplicates_skipped:,} duplicates skipped"
        )
        out.rule(f"Recent trades  (k2 query trades --exchange BINANCE --desc -n {LIVE_TRADES})")
        engine = QueryEngine(catalog, settings.lake.namespace, settings.query)
        try:
            query = TickQuery(
                exchange="BINANCE", start=started - timedelta(minutes=1), limit=LIVE_TRADES, descending=True
            )
            page = trades(engine, query)
        finally:
            engine.close()
    finally:
        close_catalog(catalog)
    render(page.rows.select(["timestamp", "symbol", "price", "quantity", "side", "trade_id"]), Format.TEXT)
    out.print(f"Recent trades: {page.rows.num_rows}")


def _live_sample(path: Path, now: datetime) -> Path:
    """A recording of :data:`LIVE_MESSAGES` frames starting ``now``, with trade ids never used before
    (taken from the clock), so every run lands new trades.
    """
    import itertools

    import orjson

    from k2.ingest.live.binance.tapes import SyntheticTape

    start_ms = int(now.timestamp() * 1000)
    clock = itertools.count(start_ms, 10)
    tape = SyntheticTape(
        ("BTCUSDT", "ETHUSDT", "BNBUSDT"), clock_ms=lambda: next(clock), first_trade_id=start_ms
    )
    frames = (tape.step() for _ in range(LIVE_MESSAGES))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps({"stream": e.stream, "data": e.data}) + b"\n" for e in frames))
    return path
