"""``k2 query``: read trades, quotes, bars, summaries and lake metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, render, render_one
from k2.domain.time import utc_text

if TYPE_CHECKING:
    from k2.query import AsOf
    from k2.query.coverage import CoverageQuery
    from k2.query.pipeline import PipelineHealth

app = typer.Typer(help="Query the lake.", no_args_is_help=True)

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
SymbolOption = Annotated[list[str] | None, typer.Option("--symbol", "-s", help="Symbol; repeat for several.")]
ExchangeOption = Annotated[str | None, typer.Option("--exchange", "-e", help="Exchange code, e.g. ASX.")]
StartOption = Annotated[str | None, typer.Option(help="From this instant (ISO-8601; UTC if no offset).")]
EndOption = Annotated[str | None, typer.Option(help="Before this instant (ISO-8601; UTC if no offset).")]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows per page.")]
SnapshotOption = Annotated[int | None, typer.Option("--as-of-snapshot", help="Read this snapshot id.")]
TagOption = Annotated[str | None, typer.Option("--as-of-tag", help="Read the snapshot this tag names.")]
TimeOption = Annotated[str | None, typer.Option("--as-of", help="Read the table as it was at this instant.")]
TableOption = Annotated[str, typer.Option("--table", "-t", help="trades or quotes.")]
ListLimitOption = Annotated[
    int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")
]


def _as_of(snapshot: int | None, tag: str | None, at: str | None) -> AsOf:
    from k2.domain.time import parse_instant
    from k2.query import AsOf

    return AsOf(snapshot_id=snapshot, tag=tag, time=parse_instant(at) if at else None)


def _ticks(
    ctx: typer.Context,
    table: str,
    symbol: list[str] | None,
    exchange: str | None,
    start: str | None,
    end: str | None,
    limit: int,
    cursor: str | None,
    desc: bool,
    snapshot: int | None,
    tag: str | None,
    at: str | None,
    fmt: Format,
) -> None:
    from k2.domain.time import parse_instant
    from k2.query import TickQuery

    as_of = _as_of(snapshot, tag, at)
    query = TickQuery(
        symbols=tuple(symbol or ()),
        exchange=exchange,
        start=parse_instant(start) if start else None,
        end=parse_instant(end) if end else None,
        limit=limit,
        descending=desc,
        cursor=cursor,
        as_of=as_of,
    )
    reader = context(ctx).reader
    page = reader.trades(query) if table == "trades" else reader.quotes(query)
    rows = (
        page.rows.drop_columns(["ingestion_timestamp", "platform_sequence"])
        if fmt is Format.TEXT
        else page.rows
    )
    render(rows, fmt, title=f"{table} (snapshot {page.snapshot_id})")
    if page.next_cursor:
        typer.echo(f"next page: --cursor {page.next_cursor}", err=True)


def _tick_command(table: str, doc: str) -> Callable[..., None]:
    """The `trades` or `quotes` command: both take the same options."""

    @catch_errors
    def command(
        ctx: typer.Context,
        symbol: SymbolOption = None,
        exchange: ExchangeOption = None,
        start: StartOption = None,
        end: EndOption = None,
        limit: LimitOption = 20,
        cursor: Annotated[str | None, typer.Option(help="Cursor printed by the previous page.")] = None,
        desc: Annotated[bool, typer.Option("--desc", help="Newest first.")] = False,
        as_of_snapshot: SnapshotOption = None,
        as_of_tag: TagOption = None,
        as_of: TimeOption = None,
        fmt: FormatOption = Format.TEXT,
    ) -> None:
        _ticks(
            ctx,
            table,
            symbol,
            exchange,
            start,
            end,
            limit,
            cursor,
            desc,
            as_of_snapshot,
            as_of_tag,
            as_of,
            fmt,
        )

    command.__doc__ = doc
    return command


app.command("trades")(_tick_command("trades", "Trades by symbol, exchange and time range, oldest first."))
app.command("quotes")(
    _tick_command("quotes", "Best bid and ask updates by symbol, exchange and time range, oldest first.")
)


@app.command()
@catch_errors
def summary(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BHP.")],
    day: Annotated[str, typer.Argument(help="Exchange-local trading day, YYYY-MM-DD.")],
    exchange: ExchangeOption = None,
    as_of_snapshot: SnapshotOption = None,
    as_of_tag: TagOption = None,
    as_of: TimeOption = None,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Open, high, low, close, volume, trade count and VWAP of one symbol on one trading day."""
    from k2.errors import InvalidInputError
    from k2.query.errors import SymbolNotFoundError

    try:
        on = date.fromisoformat(day)
    except ValueError:
        raise InvalidInputError(f"day must be YYYY-MM-DD, got {day!r}") from None
    as_of_value = _as_of(as_of_snapshot, as_of_tag, as_of)
    result = context(ctx).reader.daily_summary(symbol.upper(), on, exchange, as_of_value)
    if result is None:
        raise SymbolNotFoundError(f"no trades of {symbol.upper()} on {on}")
    render_one(result, fmt, title=f"{result.symbol} {result.exchange} {on}")


@app.command()
@catch_errors
def bars(
    ctx: typer.Context,
    symbol: SymbolOption = None,
    exchange: ExchangeOption = None,
    interval: Annotated[str, typer.Option("--interval", "-i", help="1s … 1d, e.g. 1m, 5m, 1h, 1d.")] = "1m",
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="ohlcv, vwap, twap or trade_count; repeat for several (default ohlcv, vwap).",
        ),
    ] = None,
    start: StartOption = None,
    end: EndOption = None,
    as_of_snapshot: SnapshotOption = None,
    as_of_tag: TagOption = None,
    as_of: TimeOption = None,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Bars per symbol with the metrics asked for, as POST /v1/aggregations answers them; buckets
    follow the venue's local clock (1d = local trading day).
    """
    from k2.domain.bars import DEFAULT_METRICS, Interval, Metric
    from k2.domain.time import parse_instant
    from k2.errors import InvalidInputError
    from k2.query import BarQuery
    from k2.query.aggregations import aggregate

    try:
        metrics = [Metric(name) for name in metric] if metric else list(DEFAULT_METRICS)
    except ValueError:
        known = ", ".join(m.value for m in Metric)
        raise InvalidInputError(f"--metric takes {known}; got {', '.join(metric or ())}") from None
    as_of_value = _as_of(as_of_snapshot, as_of_tag, as_of)
    query = BarQuery(
        Interval.parse(interval),
        symbols=tuple(symbol or ()),
        exchange=exchange,
        start=parse_instant(start) if start else None,
        end=parse_instant(end) if end else None,
        as_of=as_of_value,
    )
    render(aggregate(context(ctx).reader, query, metrics), fmt, title=f"{interval} bars")


@app.command()
@catch_errors
def symbols(
    ctx: typer.Context,
    exchange: ExchangeOption = None,
    table: TableOption = "trades",
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Symbols present in a table (from table metadata, not a scan)."""
    from k2.lake.tables import table_spec
    from k2.query import symbols as list_symbols

    pairs = list_symbols(context(ctx).engine, exchange, table_spec(table))
    render([{"exchange": e, "symbol": s} for e, s in pairs], fmt, title="symbols")


@app.command()
@catch_errors
def gaps(
    ctx: typer.Context,
    symbol: SymbolOption = None,
    exchange: ExchangeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    table: TableOption = "trades",
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Holes in each symbol's venue sequence numbers within a trading day."""
    from k2.lake.tables import table_spec
    from k2.query.coverage import sequence_gaps
    from k2.query.reader import duckdb_only

    engine = duckdb_only(context(ctx).reader, "sequence gaps")
    query = _coverage_query(symbol, exchange, start, end)
    render(sequence_gaps(engine, table_spec(table), query), fmt, title=f"{table} sequence gaps")


def _coverage_query(
    symbol: list[str] | None, exchange: str | None, start: str | None, end: str | None
) -> CoverageQuery:
    """The coverage and gaps commands' filters as one query."""
    from k2.domain.time import parse_instant
    from k2.query.coverage import CoverageQuery

    return CoverageQuery(
        symbols=tuple(symbol or ()),
        exchange=exchange,
        start=parse_instant(start) if start else None,
        end=parse_instant(end) if end else None,
    )


@app.command()
@catch_errors
def coverage(
    ctx: typer.Context,
    symbol: SymbolOption = None,
    exchange: ExchangeOption = None,
    start: StartOption = None,
    end: EndOption = None,
    table: TableOption = "trades",
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Per symbol and venue-local day: rows and first/last event time; weekdays without data
    between a symbol's first and last day show 0 rows.
    """
    from k2.lake.tables import table_spec
    from k2.query.coverage import coverage as day_coverage
    from k2.query.reader import duckdb_only

    engine = duckdb_only(context(ctx).reader, "coverage")
    result = day_coverage(engine, table_spec(table), _coverage_query(symbol, exchange, start, end))
    render(result, fmt, title=f"{table} coverage")


@app.command()
@catch_errors
def stats(ctx: typer.Context, fmt: FormatOption = Format.TEXT) -> None:
    """Rows, files, size, partitions and day span of the trades and quotes tables."""
    from k2.query import stats as table_stats

    render(table_stats(context(ctx).engine), fmt, title="lake statistics")


@app.command()
@catch_errors
def snapshots(
    ctx: typer.Context,
    table: TableOption = "trades",
    limit: ListLimitOption = 20,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """A table's snapshots, newest first: the writer and load that made each, a stream commit's
    Kafka offsets, the tags on it.
    """
    from k2.lake.tables import table_spec
    from k2.query import snapshots as list_snapshots

    render(list_snapshots(context(ctx).engine, table_spec(table))[:limit], fmt, title=f"{table} snapshots")


@app.command()
@catch_errors
def loads(
    ctx: typer.Context,
    table: TableOption = "trades",
    limit: ListLimitOption = 20,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """The loads that committed to a table, newest first, with their rejected rows and reject file."""
    from k2.lake.tables import table_spec
    from k2.query import loads as list_loads

    render(list_loads(context(ctx).engine, table_spec(table), limit), fmt, title=f"{table} loads")


@app.command()
@catch_errors
def pipeline(
    ctx: typer.Context,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Is the pipeline healthy? Each table's last commit and its age, snapshots, files and fullest
    partition; on the platform the sink (up, consumer lag per topic, last commit, breakers, dead
    letters) and the feed (up, connected, lag, last message, reconnects) from Prometheus. The
    same fields as GET /v1/pipeline, with ``api`` null: this command is no API process.
    """
    from k2.query.pipeline import engine_readings, pipeline_health

    if fmt is Format.CSV:
        raise typer.BadParameter("the pipeline's health is one nested document: --format text or json")
    health = pipeline_health(context(ctx).settings, engine_readings(context(ctx).engine), None)
    if fmt is Format.JSON:
        render_one(health, Format.JSON)
        return
    _print_pipeline(health)


def _print_pipeline(health: PipelineHealth) -> None:
    """The answer as rich tables: the lake's tables, then the sink and the feed (or why not)."""
    from k2.cli._output import console

    out = console()
    out.print(f"[bold]pipeline[/bold] ({health.profile} profile), checked at {utc_text(health.checked_at)}")
    if health.lake is None:
        out.print(f"lake: [red]{health.lake_status}[/red] ({health.lake_reason})")
    else:
        render(health.lake, Format.TEXT, title="lake")
    stream = health.stream
    if stream is None:
        colour = "red" if health.stream_status == "unavailable" else "dim"
        out.print(f"stream: [{colour}]{health.stream_status}[/{colour}] ({health.stream_reason})")
        return
    sink, feed = stream.sink, stream.feed
    render_one(
        {k: v for k, v in asdict(sink).items() if k != "consumer_lag"},
        Format.TEXT,
        title=f"sink (from {stream.prometheus_url})",
    )
    if sink.consumer_lag:
        render(sink.consumer_lag, Format.TEXT, title="sink consumer lag")
    render_one({k: v for k, v in asdict(feed).items() if k != "exchanges"}, Format.TEXT, title="feed")
    if feed.exchanges:
        render(feed.exchanges, Format.TEXT, title="feed exchanges")
