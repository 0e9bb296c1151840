"""``k2 platform``: install, start, stop and check the real services K2 runs on."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, render
from k2.errors import ConfigurationError
from k2.settings import MAX_KAFKA_BROKERS, K2Settings, PlatformSettings

if TYPE_CHECKING:
    from k2.platform.kafka import ClusterState
    from k2.platform.service import Health

app = typer.Typer(
    help="The real services: PostgreSQL, MinIO (S3), Kafka (KRaft), the schema registry, Prometheus and "
    "Alertmanager; Trino with --with trino.",
    no_args_is_help=True,
)

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
BrokersOption = Annotated[
    int | None,
    typer.Option(
        "--brokers",
        min=1,
        max=MAX_KAFKA_BROKERS,
        help="Kafka brokers (K2_PLATFORM_KAFKA_BROKERS); fixed when Kafka's data is first formatted.",
    ),
]
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


def _with_brokers(settings: K2Settings, brokers: int | None) -> K2Settings:
    """``settings`` with ``brokers`` Kafka nodes (validated again: ports). Only the platform's
    settings change: the services read nothing else, and this process runs no Kafka client.

    Raises:
        ConfigurationError: a node's port would collide with another's or a service's.
    """
    if brokers is None:
        return settings
    values = {**settings.platform.model_dump(exclude_unset=True), "kafka_brokers": brokers}
    try:
        platform = PlatformSettings.model_validate(values)
    except ValidationError as error:
        raise ConfigurationError(f"--brokers {brokers}: {error.errors()[0]['msg']}") from None
    return settings.model_copy(update={"platform": platform})


@app.command()
@catch_errors
def up(
    ctx: typer.Context,
    fmt: FormatOption = Format.TEXT,
    brokers: BrokersOption = None,
    with_: WithOption = None,
) -> None:
    """Install what is missing (first run: several minutes) and start every service on loopback."""
    from k2.platform import stack

    settings = _with_brokers(context(ctx).settings, brokers)
    unknown = sorted(set(with_ or ()) - set(OPTIONAL))
    if unknown:
        raise typer.BadParameter(f"--with takes {', '.join(OPTIONAL)}; not {', '.join(unknown)}")
    if "trino" in (with_ or ()):
        settings = settings.model_copy(
            update={"platform": settings.platform.model_copy(update={"trino": True})}
        )
    health = stack.up(settings, lambda step: typer.echo(step, err=True))
    render(_rows(health), fmt, title=f"platform up (data in {settings.platform_data})")
    count = settings.platform.kafka_brokers
    with_brokers = f" K2_PLATFORM_KAFKA_BROKERS={count}" if count > 1 else ""
    typer.echo(
        f"Use it with: export K2_PROFILE=platform{with_brokers}   (or: k2 --profile platform …)", err=True
    )


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
    from k2.platform.kafka import Kafka

    settings = context(ctx).settings
    health = stack.status(settings)
    cluster = Kafka(settings).cluster()
    rows = _rows(health)
    if fmt is Format.JSON:
        for row in rows:
            if row["name"] == Kafka.name:
                row["cluster"] = asdict(cluster)
        render(rows, fmt)
    else:
        render(
            rows,
            fmt,
            title=f"platform status (data in {settings.platform_data}, software in {settings.platform.home})",
        )
        render(cluster.brokers, fmt, title=_cluster_title(cluster))
    if not all(h.healthy for h in health):
        raise typer.Exit(4)


def _cluster_title(cluster: ClusterState) -> str:
    """The Kafka cluster's table title: its controller and the replication of its partitions."""
    under = cluster.under_replicated_partitions
    replication = (
        "no broker answers"
        if under is None
        else f"{under} of {cluster.partitions} partition(s) under-replicated"
    )
    controller = "none" if cluster.controller is None else f"node {cluster.controller}"
    return f"kafka brokers (active controller: {controller}; {replication})"
