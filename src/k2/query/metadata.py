"""What the lake holds, answered from Iceberg metadata rather than by scanning data: symbols,
table statistics, snapshots and the loads that made them (from the ``k2.*`` summary entries of
:mod:`k2.lake.summary`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyiceberg.table.snapshots import Snapshot

from k2.lake.errors import TableNotFoundError
from k2.lake.summary import (
    LOAD_ID,
    LOAD_REJECT_FILE,
    LOAD_SOURCE,
    LOAD_SOURCE_KIND,
    offsets_in,
    rows_rejected_in,
    writer_of,
)
from k2.lake.tables import MARKET_TABLES, TRADES, TableSpec
from k2.lake.writer import symbols_of
from k2.query.engine import CURRENT, AsOf, QueryEngine


@dataclass(frozen=True, slots=True)
class KafkaOffset:
    """Where a stream sink commit leaves one Kafka partition: the next offset to read (every
    message before it is in the table).
    """

    topic: str
    partition: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot of a table: which K2 writer made it (``source``: load, stream, compaction,
    rollup; None when its summary does not say), and for a stream sink commit, the Kafka offsets
    it records (None for any other commit).
    """

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    added_records: int
    total_records: int
    load_id: str | None
    tags: tuple[str, ...]
    source: str | None
    kafka_offsets: tuple[KafkaOffset, ...] | None


@dataclass(frozen=True, slots=True)
class LoadInfo:
    """One load's commits to a table: when, how many rows they added and what the load rejected.

    ``rows_rejected`` and ``reject_file`` are the load's (over all its tables; the reject file
    is named inside the data directory's ``rejects/``) as its last commit to the table recorded
    them; None for loads made before K2 recorded them, and ``reject_file`` None when no row was
    rejected.
    """

    load_id: str
    first_commit_at: datetime
    last_commit_at: datetime
    commits: int
    rows_written: int
    rows_rejected: int | None
    reject_file: str | None
    source_kind: str | None
    source_description: str | None


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
        extra = _entries(snapshot)
        result.append(
            SnapshotInfo(
                snapshot_id=snapshot.snapshot_id,
                parent_id=snapshot.parent_snapshot_id,
                committed_at=_committed_at(snapshot),
                operation=summary.operation.value if summary else "unknown",
                added_records=int(extra.get("added-records", 0)),
                total_records=int(extra.get("total-records", 0)),
                load_id=extra.get(LOAD_ID),
                tags=tuple(sorted(tags.get(snapshot.snapshot_id, []))),
                source=writer_of(extra),
                kafka_offsets=_kafka_offsets(extra),
            )
        )
    return result


def loads(engine: QueryEngine, spec: TableSpec = TRADES, limit: int | None = None) -> list[LoadInfo]:
    """The loads that committed to the table (among its snapshots not expired), newest last
    commit first, at most ``limit``.
    """
    try:
        table = engine.table(spec)
    except TableNotFoundError:
        return []
    by_load: dict[str, list[Snapshot]] = {}
    for snapshot in table.snapshots():
        load_id = _entries(snapshot).get(LOAD_ID)
        if load_id is not None:
            by_load.setdefault(load_id, []).append(snapshot)
    found = [_load_info(load_id, commits) for load_id, commits in by_load.items()]
    found.sort(key=lambda load: (load.last_commit_at, load.load_id), reverse=True)
    return found[:limit]


def _load_info(load_id: str, commits: list[Snapshot]) -> LoadInfo:
    """A load from its commits to one table; the last one says what it rejected in the end."""
    commits = sorted(commits, key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
    last = _entries(commits[-1])
    return LoadInfo(
        load_id=load_id,
        first_commit_at=_committed_at(commits[0]),
        last_commit_at=_committed_at(commits[-1]),
        commits=len(commits),
        rows_written=sum(int(_entries(s).get("added-records", 0)) for s in commits),
        rows_rejected=rows_rejected_in(last),
        reject_file=last.get(LOAD_REJECT_FILE),
        source_kind=last.get(LOAD_SOURCE_KIND),
        source_description=last.get(LOAD_SOURCE),
    )


def _entries(snapshot: Snapshot) -> Mapping[str, str]:
    """The summary entries of ``snapshot`` other than its operation."""
    return snapshot.summary.additional_properties if snapshot.summary else {}


def _committed_at(snapshot: Snapshot) -> datetime:
    return datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC)


def _kafka_offsets(entries: Mapping[str, str]) -> tuple[KafkaOffset, ...] | None:
    """The offsets a stream sink commit records, by topic and partition; None for other commits."""
    offsets = offsets_in(entries)
    if offsets is None:
        return None
    return tuple(
        KafkaOffset(topic, partition, offset)
        for topic, parts in sorted(offsets.items())
        for partition, offset in sorted(parts.items())
    )


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
        last_commit=_committed_at(current),
    )


def stats(engine: QueryEngine) -> list[TableStats]:
    """:func:`table_stats` of the trades and quotes tables."""
    return [table_stats(engine, spec) for spec in MARKET_TABLES]
