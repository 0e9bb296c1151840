"""``k2 platform``: install, start, stop and check the real services K2 runs on."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, render

if TYPE_CHECKING:
    from k2.platform.service import Health

app = typer.Typer(
    help="The real services: PostgreSQL, MinIO (S3), Kafka (KRaft), the schema registry, Prometheus and "
    "Alertmanager; Trino with --with trino.",
    no_args_is_help=True,
)

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
WithOption = Annotated[
    list[str] | None,
    typer.Option(
        "--with",
        help="Optional service to run too: trino (Trino over K2's tables; or K2_PLATFORM_TRINO=true).",
    ),
]
OPTIONAL = ("trino",)
COLUMNS = ("name", "version", "installed", "running", "healthy", "endpoint", "detail")


def _rows(health: list[Health]) -> list[dict[str, object]]:
    """Each service's health, its name and version first."""
    return [{column: asdict(h)[column] for column in COLUMNS} for h in health]


@app.command()
@catch_errors
def up(ctx: typer.Context, fmt: FormatOption = Format.TEXT, with_: WithOption = None) -> None:
    """Install what is missing (first run: several minutes) and start every service on loopback."""
    from k2.platform import stack

    settings = context(ctx).settings
    unknown = sorted(set(with_ or ()) - set(OPTIONAL))
    if unknown:
        raise typer.BadParameter(f"--with takes {', '.join(OPTIONAL)}; not {', '.join(unknown)}")
    if "trino" in (with_ or ()):
        settings = settings.model_copy(
            update={"platform": settings.platform.model_copy(update={"trino": True})}
        )
    health = stack.up(settings, lambda step: typer.echo(step, err=True))
    render(_rows(health), fmt, title=f"platform up (data in {settings.platform_data})")
    typer.echo("Use it with: export K2_PROFILE=platform   (or: k2 --profile platform …)", err=True)


@app.command()
@catch_errors
def down(ctx: typer.Context) -> None:
    """Stop every service; their data stays for the next `k2 platform up`."""
    from k2.platform import stack

    stack.down(context(ctx).settings)
    typer.echo("platform stopped")


@app.command()
@catch_errors
def status(ctx: typer.Context, fmt: FormatOption = Format.TEXT) -> None:
    """Show each service's health; exits 4 when any is not healthy."""
    from k2.platform import stack

    settings = context(ctx).settings
    health = stack.status(settings)
    render(
        _rows(health),
        fmt,
        title=f"platform status (data in {settings.platform_data}, software in {settings.platform.home})",
    )
    if not all(h.healthy for h in health):
        raise typer.Exit(4)
