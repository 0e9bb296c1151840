"""What the lake holds, answered from Iceberg metadata rather than by scanning data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from k2.lake.errors import TableNotFoundError
from k2.lake.tables import MARKET_TABLES, TRADES, TableSpec
from k2.lake.writer import symbols_of
from k2.query.engine import CURRENT, AsOf, QueryEngine


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot of a table."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    added_records: int
    total_records: int
    load_id: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TableStats:
    """Size and span of one table at its current snapshot."""

    table: str
    snapshot_id: int | None
    snapshots: int
    rows: int
    data_files: int
    bytes: int
    partitions: int
    first_day: date | None
    last_day: date | None
    symbols: int
    max_files_per_partition: int = 0
    last_commit: datetime | None = None


def symbols(
    engine: QueryEngine, exchange: str | None = None, spec: TableSpec = TRADES, as_of: AsOf = CURRENT
) -> list[tuple[str, str]]:
    """(exchange, symbol) pairs present in ``spec``'s table, from its snapshot summary."""
    try:
        table = engine.table(spec)
    except TableNotFoundError:
        return []
    snapshot_id = engine.snapshot_id(table, as_of)
    listed = symbols_of(table, snapshot_id) if snapshot_id else {}
    return [
        (ex, sym) for ex in sorted(listed) if exchange is None or ex == exchange.upper() for sym in listed[ex]
    ]


def snapshots(engine: QueryEngine, spec: TableSpec = TRADES) -> list[SnapshotInfo]:
    """The table's snapshots, newest first, with the tags that point at each."""
    table = engine.table(spec)
    tags: dict[int, list[str]] = {}
    for name, ref in table.metadata.refs.items():
        if ref.snapshot_ref_type == "tag":
            tags.setdefault(ref.snapshot_id, []).append(name)
    result = []
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True):
        summary = snapshot.summary
        extra = summary.additional_properties if summary else {}
        result.append(
            SnapshotInfo(
                snapshot_id=snapshot.snapshot_id,
                parent_id=snapshot.parent_snapshot_id,
                committed_at=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
                operation=summary.operation.value if summary else "unknown",
                added_records=int(extra.get("added-records", 0)),
                total_records=int(extra.get("total-records", 0)),
                load_id=extra.get("k2.load.id"),
                tags=tuple(sorted(tags.get(snapshot.snapshot_id, []))),
            )
        )
    return result


def empty_stats(spec: TableSpec) -> TableStats:
    """The figures of a table holding nothing (or not created yet)."""
    return TableStats(spec.name, None, 0, 0, 0, 0, 0, None, None, 0)


def table_stats(engine: QueryEngine, spec: TableSpec) -> TableStats:
    """Rows, files, bytes, partitions, day span and symbol count of one table."""
    try:
        table = engine.table(spec)
    except TableNotFoundError:
        return empty_stats(spec)
    current = table.current_snapshot()
    if current is None:
        return empty_stats(spec)
    extra = current.summary.additional_properties if current.summary else {}
    days: list[date] = []
    partitions = fullest = 0
    if spec.time_column:
        partition_rows = table.inspect.partitions().to_pylist()
        partitions = len(partition_rows)
        fullest = max((row["file_count"] for row in partition_rows), default=0)
        days = sorted(
            date.fromordinal(date(1970, 1, 1).toordinal() + row["partition"][f"{spec.time_column}_day"])
            if isinstance(row["partition"][f"{spec.time_column}_day"], int)
            else row["partition"][f"{spec.time_column}_day"]
            for row in partition_rows
        )
    return TableStats(
        table=spec.name,
        snapshot_id=current.snapshot_id,
        snapshots=len(table.snapshots()),
        rows=int(extra.get("total-records", 0)),
        data_files=int(extra.get("total-data-files", 0)),
        bytes=int(extra.get("total-files-size", 0)),
        partitions=partitions,
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        symbols=sum(len(v) for v in symbols_of(table).values()),
        max_files_per_partition=fullest,
        last_commit=datetime.fromtimestamp(current.timestamp_ms / 1000, tz=UTC),
    )


def stats(engine: QueryEngine) -> list[TableStats]:
    """:func:`table_stats` of the trades and quotes tables."""
    return [table_stats(engine, spec) for spec in MARKET_TABLES]
