"""``k2 lake``: maintain the tables."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from k2.cli._context import context
from k2.cli._output import Format, catch_errors, render

if TYPE_CHECKING:
    from k2.lake.tables import TableSpec

app = typer.Typer(help="Maintain the lake's tables.", no_args_is_help=True)

FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
TablesOption = Annotated[
    list[str] | None,
    typer.Option("--table", "-t", help="Table; repeat for several. Default: trades and quotes."),
]


def _specs(tables: list[str] | None) -> list[TableSpec]:
    from k2.lake.tables import MARKET_TABLES, table_spec

    return [table_spec(t) for t in tables] if tables else list(MARKET_TABLES)


@app.command()
@catch_errors
def compact(
    ctx: typer.Context,
    table: TablesOption = None,
    min_files: Annotated[
        int, typer.Option(min=1, help="Rewrite partitions with at least this many files.")
    ] = 2,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Rewrite partitions made of several small files into large sorted ones, atomically."""
    from k2.lake.maintenance import compact as compact_table
    from k2.lake.tables import load_table

    cli = context(ctx)
    results = []
    for spec in _specs(table):
        results.append(
            compact_table(
                load_table(cli.catalog, cli.settings.lake.namespace, spec), spec, min_files=min_files
            )
        )
    render(results, fmt, title="compaction")


@app.command()
@catch_errors
def expire(
    ctx: typer.Context,
    table: TablesOption = None,
    older_than_days: Annotated[
        float, typer.Option(min=0, help="Expire snapshots older than this many days.")
    ] = 7,
    retain_last: Annotated[int, typer.Option(min=1, help="Always keep this many newest snapshots.")] = 1,
    remove_orphans: Annotated[
        bool, typer.Option(help="Then delete data files no remaining snapshot refers to.")
    ] = True,
    orphan_grace_minutes: Annotated[
        float, typer.Option(min=0, help="Never delete files younger than this (commits in flight).")
    ] = 60,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Expire old snapshots (never tagged ones or the current one), then remove orphaned files."""
    from k2.lake.maintenance import expire as expire_table
    from k2.lake.maintenance import remove_orphan_files
    from k2.lake.tables import load_table

    cli = context(ctx)
    now = datetime.now(UTC)
    results = []
    for spec in _specs(table):
        iceberg_table = load_table(cli.catalog, cli.settings.lake.namespace, spec)
        expired = expire_table(
            iceberg_table, spec, older_than=now - timedelta(days=older_than_days), retain_last=retain_last
        )
        row: dict[str, object] = {**asdict(expired), "files_removed": 0, "bytes_removed": 0}
        if remove_orphans:
            orphans = remove_orphan_files(
                load_table(cli.catalog, cli.settings.lake.namespace, spec),
                spec,
                older_than=now - timedelta(minutes=orphan_grace_minutes),
            )
            row.update(files_removed=orphans.files_removed, bytes_removed=orphans.bytes_removed)
        results.append(row)
    render(results, fmt, title="expiry")


@app.command()
@catch_errors
def tag(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tag name, e.g. eod-2014-03-14.")],
    table: TablesOption = None,
    snapshot: Annotated[int | None, typer.Option(help="Snapshot id; default the current one.")] = None,
    fmt: FormatOption = Format.TEXT,
) -> None:
    """Name the current (or a given) snapshot, so audits can read it later and expiry keeps it."""
    from k2.lake.maintenance import tag as tag_table
    from k2.lake.tables import load_table

    cli = context(ctx)
    rows = []
    for spec in _specs(table):
        snapshot_id = tag_table(load_table(cli.catalog, cli.settings.lake.namespace, spec), name, snapshot)
        rows.append({"table": spec.name, "tag": name, "snapshot_id": snapshot_id})
    render(rows, fmt, title="tags")


@app.command()
@catch_errors
def rollup(ctx: typer.Context, fmt: FormatOption = Format.TEXT) -> None:
    """Bring the 1-minute bars (bars_1m) up to date with trades, building them on first use.

    Loads and the stream sink do this after every commit; this is for a lake written before the
    rollup existed, or after a refresh was deferred.
    """
    from k2.lake.rollup import refresh

    cli = context(ctx)
    result = refresh(cli.catalog, cli.settings.lake.namespace, cli.settings.lake.target_file_size_bytes)
    render([asdict(result)], fmt, title="rollup")


#: What an embedded data directory holds that ``reset`` removes (never ``platform/``, the local
#: platform's services and their data, which ``k2 platform down`` stops and keeps).
RESET_ENTRIES = ("catalog.db", "warehouse", "rejects", "demo-api-key", "demo-live.jsonl")


@app.command()
@catch_errors
def reset(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Empty the embedded lake of the data directory (K2_DATA_DIR): its catalog, warehouse, reject
    files and demo files. The platform's data (``platform/``) and anything else there stay.
    """
    import shutil

    from k2.errors import ConfigurationError
    from k2.settings import Profile

    settings = context(ctx).settings
    custom = settings.lake.catalog_uri or settings.lake.warehouse or settings.ingest.reject_dir
    if settings.profile is Profile.PLATFORM or custom:
        raise ConfigurationError(
            "k2 lake reset empties the embedded lake of a data directory only; this lake's catalog or "
            "warehouse is elsewhere (the platform profile or K2_LAKE_*/K2_INGEST_REJECT_DIR settings)"
        )
    root = settings.data_dir.resolve()
    found = [root / name for name in RESET_ENTRIES if (root / name).exists()]
    if not found:
        typer.echo(f"nothing to remove in {root}")
        return
    for path in found:
        typer.echo(f"{'would remove' if dry_run else 'removing'} {path}")
    if dry_run:
        return
    if not yes:
        typer.confirm(f"Remove these {len(found)} entries of {root}?", abort=True)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    typer.echo(f"the embedded lake in {root} is empty")
