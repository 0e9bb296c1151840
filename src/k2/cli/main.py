"""The ``k2`` root command: global options, then one sub-command group per noun."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from k2.cli import demo, ingest, lake, platform, query, serve, stream
from k2.cli._context import CliContext
from k2.settings import LogLevel, Profile

app = typer.Typer(
    name="k2",
    help="K2 market data lakehouse.\n\nText tables take the terminal's width, or 200 columns when the "
    "output is not a terminal (a pipe, a CI log; COLUMNS overrides it); data commands also write "
    "--format csv or json.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(ingest.app, name="ingest")
app.add_typer(query.app, name="query")
app.add_typer(lake.app, name="lake")
app.add_typer(platform.app, name="platform")
app.add_typer(stream.app, name="stream")
app.registered_commands.extend(demo.app.registered_commands)
app.registered_commands.extend(serve.app.registered_commands)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Embedded lake directory (K2_DATA_DIR).")] = None,
    log_level: Annotated[LogLevel | None, typer.Option(case_sensitive=False, help="Log level.")] = None,
    profile: Annotated[
        Profile | None,
        typer.Option(help="embedded (no services) or platform (`k2 platform up`) (K2_PROFILE)."),
    ] = None,
) -> None:
    """Build settings once and configure logging for every command."""
    from k2.obs.logging import configure_logging
    from k2.settings import K2Settings, ObsSettings

    settings = K2Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if profile is not None:
        settings = settings.on_profile(profile)
    if log_level is not None:
        settings = settings.model_copy(update={"obs": ObsSettings(log_level=log_level)})
    configure_logging(settings.obs)
    ctx.obj = CliContext(settings)


def main() -> None:
    """Entry point of the ``k2`` script."""
    app()


if __name__ == "__main__":
    main()
