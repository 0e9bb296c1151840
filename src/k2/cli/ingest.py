"""``k2 ingest``: load files or generated data into the lake."""

from __future__ import annotations

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
    from k2.ingest.produce_source import ProduceReport
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
    cli: CliContext, make_source: SourceFactory, fmt: Format, *, quiet: bool = False
) -> IngestReport:
    """Build the source, run the load with a progress bar, print the report."""
    from k2.ingest.loader import Loader, new_load_id, reject_file_for
    from k2.lake.writer import LakeWriter

    settings = cli.settings
    load_id = new_load_id()
    rejects = reject_file_for(settings.reject_dir, load_id)
    source = make_source(rejects, settings.ingest.read_batch_rows, datetime.now(UTC))
    writer = LakeWriter(cli.catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    loader = Loader(writer, commit_rows=settings.ingest.commit_rows)
    show = fmt is Format.TEXT and not quiet
    with Progress(
        TextColumn("[bold]loading[/bold]"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task("load", total=source.total_bytes)
        report = loader.run(source, rejects, load_id, lambda n: progress.advance(task, n))
    summary = report.as_dict()
    summary["tables"] = (
        ", ".join(
            f"{name}: {c.rows_written} written of {c.rows_read} read" for name, c in report.tables.items()
        )
        if fmt is Format.TEXT
        else summary["tables"]
    )
    render_one(summary, fmt, title="ingest report")
    return report


def run_produce(cli: CliContext, make_source: SourceFactory, fmt: Format) -> ProduceReport:
    """Build the source, produce its trades and quotes to Kafka (reference data to the lake) with a
    progress bar, print the report.
    """
    from k2.cli._metrics import served_metrics
    from k2.ingest.loader import new_load_id, reject_file_for
    from k2.ingest.produce_source import produce_source
    from k2.ingest.producer import MarketProducer
    from k2.lake.writer import LakeWriter

    settings = cli.settings
    load_id = new_load_id()
    rejects = reject_file_for(settings.reject_dir, load_id)
    source = make_source(rejects, settings.ingest.read_batch_rows, datetime.now(UTC))
    writer = LakeWriter(cli.catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    with (
        Progress(
            TextColumn("[bold]producing[/bold]"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=console(stderr=True),
            disable=fmt is not Format.TEXT,
            transient=True,
        ) as progress,
        MarketProducer(settings.kafka, served_metrics(settings.obs.metrics_port)) as producer,
    ):
        task = progress.add_task("produce", total=source.total_bytes)
        report = produce_source(
            source, producer, writer, rejects, load_id, progress=lambda n: progress.advance(task, n)
        )
    summary = report.as_dict()
    if fmt is Format.TEXT:
        summary["topics"] = ", ".join(f"{name}: {t.messages}" for name, t in report.producer.topics.items())
        summary["reference_rows"] = ", ".join(f"{name}: {n}" for name, n in report.reference_rows.items())
    render_one(summary, fmt, title="ingest report")
    return report


@app.command()
@catch_errors
def asx(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="ASX sample directory (trades/, quotes/, reference-data/).")],
    via: Annotated[
        Via,
        typer.Option(
            help="lake: write everything to the lake. kafka: produce trades and quotes to their Kafka "
            "topics (reference data still goes to the lake)."
        ),
    ] = Via.LAKE,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Load an ASX tick directory: trades, quotes and reference data."""
    from k2.ingest.sources.asx import AsxSource

    def make_source(rejects: RejectFile, rows: int, at: datetime) -> Source:
        return AsxSource(path, rejects, batch_rows=rows, ingested_at=at)

    if via is Via.KAFKA:
        run_produce(context(ctx), make_source, fmt)
    else:
        run_load(context(ctx), make_source, fmt)


@app.command()
@catch_errors
def synthetic(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option(min=1, max=10_000, help="How many symbols.")] = 8,
    days: Annotated[int, typer.Option(min=1, max=3_660, help="How many weekdays.")] = 5,
    trades_per_day: Annotated[int, typer.Option(min=1, help="Trades per symbol and day.")] = 5_000,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2024-01-08",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same ticks.")] = 7,
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

    run_load(context(ctx), lambda _, rows, at: SyntheticSource(market, batch_rows=rows, ingested_at=at), fmt)


@app.command("file")
@catch_errors
def file_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV (with header) or Parquet file with v2 columns.")],
    table: Annotated[
        str | None, typer.Option(help="trades or quotes; guessed from the columns if omitted.")
    ] = None,
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
    )
