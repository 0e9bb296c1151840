"""``k2 ingest``: load files or generated data into the lake."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from k2.cli._context import CliContext, context
from k2.cli._output import Format, catch_errors, console, render_one

if TYPE_CHECKING:
    from k2.ingest.rejects import RejectFile
    from k2.ingest.report import IngestReport
    from k2.ingest.sources.base import Source

app = typer.Typer(help="Load market data into the lake.", no_args_is_help=True)

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]


class Via(StrEnum):
    """Where trades and quotes go."""

    LAKE = "lake"
    KAFKA = "kafka"


SourceFactory = Callable[["RejectFile", int, datetime], "Source"]


def run_load(
    cli: CliContext, make_source: SourceFactory, fmt: Format, *, via: Via = Via.LAKE, quiet: bool = False
) -> IngestReport:
    """Build the source, run it to the lake (or its trades and quotes to Kafka) with a progress
    bar, print the report.
    """
    from k2.cli._metrics import served_metrics
    from k2.ingest.loader import Loader, new_load_id, reject_file_for
    from k2.ingest.producer import MarketProducer
    from k2.lake.writer import LakeWriter

    settings = cli.settings
    load_id = new_load_id()
    rejects = reject_file_for(settings.reject_dir, load_id)
    source = make_source(rejects, settings.ingest.read_batch_rows, datetime.now(UTC))
    writer = LakeWriter(cli.catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    show = fmt is Format.TEXT and not quiet
    with contextlib.ExitStack() as stack:
        producer = None
        if via is Via.KAFKA:
            metrics = served_metrics(settings, "producer", settings.obs.metrics_port)
            producer = stack.enter_context(MarketProducer(settings.kafka, metrics))
        loader = Loader(writer, commit_rows=settings.ingest.commit_rows, producer=producer)
        progress = stack.enter_context(
            Progress(
                TextColumn(f"[bold]{'producing' if producer else 'loading'}[/bold]"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                console=console(stderr=True),
                disable=not show,
                transient=True,
            )
        )
        task = progress.add_task("load", total=source.total_bytes)
        report = loader.run(source, rejects, load_id, lambda n: progress.advance(task, n))
    summary = report.as_dict()
    if fmt is Format.TEXT:
        summary["tables"] = ", ".join(
            f"{name}: {c.rows_written} written of {c.rows_read} read" for name, c in report.tables.items()
        )
        if report.topics:
            summary["topics"] = ", ".join(f"{name}: {n}" for name, n in report.topics.items())
    render_one(summary, fmt, title="ingest report")
    return report


ViaOption = Annotated[
    Via,
    typer.Option(
        help="lake: write everything to the lake. kafka: produce trades and quotes to their Kafka "
        "topics (the sink, `k2 stream run`, lands them; reference data still goes to the lake)."
    ),
]


@app.command()
@catch_errors
def asx(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="ASX sample directory (trades/, quotes/, reference-data/).")],
    via: ViaOption = Via.LAKE,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Load an ASX tick directory: trades, quotes and reference data."""
    from k2.ingest.sources.asx import AsxSource

    def make_source(rejects: RejectFile, rows: int, at: datetime) -> Source:
        return AsxSource(path, rejects, batch_rows=rows, ingested_at=at)

    run_load(context(ctx), make_source, fmt, via=via)


@app.command()
@catch_errors
def synthetic(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option(min=1, max=10_000, help="How many symbols.")] = 8,
    days: Annotated[int, typer.Option(min=1, max=3_660, help="How many weekdays.")] = 5,
    trades_per_day: Annotated[int, typer.Option(min=1, help="Trades per symbol and day.")] = 5_000,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-08",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same ticks.")] = 7,
    via: ViaOption = Via.LAKE,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Generate realistic synthetic trades and quotes (venue SYN, Sydney hours) and load them."""
    from k2.errors import InvalidInputError
    from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource

    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise InvalidInputError(f"--start must be YYYY-MM-DD, got {start!r}") from None
    market = SyntheticMarket(
        symbols=symbols, days=days, trades_per_day=trades_per_day, start=first, seed=seed
    )

    run_load(
        context(ctx),
        lambda _, rows, at: SyntheticSource(market, batch_rows=rows, ingested_at=at),
        fmt,
        via=via,
    )


@app.command("file")
@catch_errors
def file_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV (with header) or Parquet file with v2 columns.")],
    table: Annotated[
        str | None, typer.Option(help="trades or quotes; guessed from the columns if omitted.")
    ] = None,
    via: ViaOption = Via.LAKE,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Load a CSV or Parquet file that already has the v2 columns."""
    from k2.ingest.sources.file import FileSource
    from k2.lake.tables import table_spec

    spec = table_spec(table) if table else None

    run_load(
        context(ctx),
        lambda rejects, rows, at: FileSource(path, rejects, batch_rows=rows, ingested_at=at, table=spec),
        fmt,
        via=via,
    )
