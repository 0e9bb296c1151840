"""``k2 demo``: load demo data into the embedded lake and show what can be asked of it."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.console import Console

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, render, render_one
from k2.settings import K2Settings

app = typer.Typer()


@app.command()
@catch_errors
def demo(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option(min=1, help="Synthetic symbols.")] = 6,
    days: Annotated[int, typer.Option(min=1, help="Synthetic weekdays.")] = 5,
    trades_per_day: Annotated[int, typer.Option(min=1, help="Trades per symbol and day.")] = 20_000,
    serve: Annotated[bool, typer.Option(help="Then serve the lake over HTTP with a demo API key.")] = False,
) -> None:
    """Generate a week of synthetic ticks into the lake, then tour the queries."""
    from k2.cli.ingest import run_load
    from k2.domain.bars import Interval
    from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
    from k2.query import BarQuery, TickQuery, bars, daily_summary, stats, trades

    cli = context(ctx)
    out = Console()
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
    out.print(f"API docs:  [cyan]{url}/docs[/cyan]")
    out.print(f"API key:   [bold]{key}[/bold]   (header X-API-Key; kept in {key_file})")
    out.print(f"Try:       curl -H 'X-API-Key: {key}' '{url}/v1/trades?limit=5'")
    out.print("Stop with Ctrl-C.")
    run_server(settings, api_keys=f"demo:{key}")
