"""``k2 stream``: run the Kafka → Iceberg sink."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from typing import Annotated

import typer

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, render_one

app = typer.Typer(help="Stream market data from Kafka into the lake.", no_args_is_help=True)


@app.command()
@catch_errors
def run(
    ctx: typer.Context,
    until_idle: Annotated[
        float | None,
        typer.Option(min=0.5, help="Stop after this many seconds without a message (default: run forever)."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port (K2_OBS_METRICS_PORT).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.TEXT,
) -> None:
    """Consume every market data topic into the lake, exactly once; SIGINT/SIGTERM commit and stop."""
    from k2.cli._metrics import served_metrics
    from k2.lake.writer import LakeWriter
    from k2.stream.sink import Sink

    cli = context(ctx)
    settings = cli.settings
    metrics = served_metrics(metrics_port or settings.obs.metrics_port)
    writer = LakeWriter(cli.catalog, settings.lake.namespace, settings.lake.target_file_size_bytes)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    report = Sink(settings, writer, metrics).run(stop, idle_exit_s=until_idle)
    render_one(asdict(report), fmt, title="stream sink")
