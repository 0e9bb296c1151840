"""Table maintenance: compaction, snapshot expiry and tags.

Compaction rewrites each partition that has several data files into one sorted file set, in a
single snapshot that removes the old files and adds the new ones, so every reader sees either
the old layout or the new one and the rows never change. Expiry drops old snapshots but never a
tagged one or the current one; orphan removal then deletes the data files no snapshot needs.
Tags name snapshots for audits.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import structlog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from k2.domain.time import to_micros
from k2.lake.errors import LakeCommitConflictError, MaintenanceError, SnapshotNotFoundError
from k2.lake.layout import arrange
from k2.lake.storage import file_system, path_within
from k2.lake.summary import MAINTENANCE
from k2.lake.tables import TableSpec, committing
from k2.lake.writer import SYMBOLS_PROPERTY, merged_symbols, write_data_files

log = structlog.get_logger(__name__)

TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What one compaction did to one table."""

    table: str
    partitions_rewritten: int
    files_before: int
    files_after: int
    rows_rewritten: int
    snapshot_id: int | None


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    """What one expiry did to one table."""

    table: str
    snapshots_expired: int
    snapshots_kept: int


def _read_files(table: Table, files: list[DataFile]) -> pa.Table:
    parts = []
    for data_file in files:
        with table.io.new_input(data_file.file_path).open() as handle:
            parts.append(pq.read_table(handle))
    return pa.concat_tables(parts, promote_options="default")  # files older than an added column lack it


def compact(table: Table, spec: TableSpec, *, min_files: int = 2) -> CompactionResult:
    """Rewrite every partition of ``table`` that has at least ``min_files`` data files.

    Raises:
        MaintenanceError: if the rows read back do not match the files' record counts, in which
            case nothing is committed.
        LakeCommitConflictError: another writer committed while it ran; nothing is committed
            (the next compaction sees that writer's files too).
    """
    current = table.current_snapshot()
    if current is None:
        return CompactionResult(spec.name, 0, 0, 0, 0, None)
    by_partition: dict[tuple[int, str], list[DataFile]] = defaultdict(list)
    for task in table.scan(snapshot_id=current.snapshot_id).plan_files():
        if task.delete_files:
            raise MaintenanceError(f"{spec.name} has delete files; K2 does not compact those")
        by_partition[(task.file.spec_id, repr(task.file.partition))].append(task.file)
    groups = [files for files in by_partition.values() if len(files) >= min_files]
    files_before = sum(len(files) for files in by_partition.values())
    if not groups:
        return CompactionResult(spec.name, 0, files_before, files_before, 0, None)
    rows_rewritten = 0
    added = 0
    # Carried over, so a reader of the current snapshot finds them without walking back.
    summary = {MAINTENANCE: "compaction", SYMBOLS_PROPERTY: merged_symbols(table, set())}
    table = committing(table)
    written: list[DataFile] = []
    try:
        with table.transaction() as tx:
            commit_uuid = uuid.uuid4()
            with tx.update_snapshot(snapshot_properties=summary).overwrite(commit_uuid) as rewrite:
                for files in groups:
                    rows = _read_files(table, files)
                    expected = sum(f.record_count for f in files)
                    if rows.num_rows != expected:
                        raise MaintenanceError(
                            f"{spec.name}: read {rows.num_rows} rows from files that record {expected}"
                        )
                    new_files = write_data_files(tx, table, arrange(rows, spec), commit_uuid)
                    written.extend(new_files)
                    if sum(f.record_count for f in new_files) != expected:
                        raise MaintenanceError(f"{spec.name}: rewritten files do not hold {expected} rows")
                    for old in files:
                        rewrite.delete_data_file(old)
                    for new in new_files:
                        rewrite.append_data_file(new)
                    rows_rewritten += expected
                    added += len(new_files)
    except (CommitFailedException, MaintenanceError) as error:
        for data_file in written:  # never committed
            with contextlib.suppress(OSError):
                table.io.delete(data_file.file_path)
        if isinstance(error, CommitFailedException):
            raise LakeCommitConflictError(
                f"{spec.name}: another writer committed during the compaction; nothing changed"
            ) from error
        raise
    removed = sum(len(files) for files in groups)
    snapshot = table.current_snapshot()
    result = CompactionResult(
        spec.name,
        len(groups),
        files_before,
        files_before - removed + added,
        rows_rewritten,
        snapshot.snapshot_id if snapshot else None,
    )
    log.info(
        "lake_compact",
        table=spec.name,
        partitions=len(groups),
        files_before=result.files_before,
        files_after=result.files_after,
        rows=rows_rewritten,
        snapshot_id=result.snapshot_id,
    )
    return result


def expire(table: Table, spec: TableSpec, *, older_than: datetime, retain_last: int = 1) -> ExpiryResult:
    """Expire snapshots committed before ``older_than``, keeping the newest ``retain_last``,
    the current one and every snapshot a tag or branch points at.

    Data files stay on disk; only the table history shrinks.
    """
    if retain_last < 1:
        raise MaintenanceError("retain_last must be at least 1")
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = to_micros(older_than) // 1000
    doomed = [
        s.snapshot_id
        for s in snapshots[retain_last:]
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected
    ]
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    log.info("lake_expire", table=spec.name, expired=len(doomed), kept=len(snapshots) - len(doomed))
    return ExpiryResult(spec.name, len(doomed), len(snapshots) - len(doomed))


@dataclass(frozen=True, slots=True)
class OrphanResult:
    """Data files removed because no snapshot referred to them any more."""

    table: str
    files_removed: int
    bytes_removed: int


def remove_orphan_files(table: Table, spec: TableSpec, *, older_than: datetime) -> OrphanResult:
    """Delete data files under the table's ``data/`` folder that no remaining snapshot references
    and that were last modified before ``older_than`` (younger files may belong to a commit in
    flight).

    Raises:
        MaintenanceError: when the warehouse's file system cannot be listed.
    """
    referenced = {path_within(p) for p in table.inspect.all_data_files()["file_path"].to_pylist()}
    try:
        filesystem, root = file_system(f"{table.location().rstrip('/')}/data", table.io.properties)
        listing = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except (OSError, ValueError) as error:
        raise MaintenanceError(f"cannot list the files of {spec.name}: {error}") from error
    cutoff = older_than.timestamp()
    removed = 0
    size = 0
    for info in listing:
        if info.type != pafs.FileType.File or info.path in referenced:
            continue
        if info.mtime is not None and info.mtime.timestamp() >= cutoff:
            continue
        filesystem.delete_file(info.path)
        removed += 1
        size += info.size or 0
    log.info("lake_remove_orphans", table=spec.name, files=removed, bytes=size)
    return OrphanResult(spec.name, removed, size)


def tag(table: Table, name: str, snapshot_id: int | None = None) -> int:
    """Point tag ``name`` at ``snapshot_id`` (default: the current snapshot) and return the id.

    Raises:
        MaintenanceError: for an invalid or already used tag name.
        SnapshotNotFoundError: when the table has no such (or no) snapshot.
    """
    if not TAG_PATTERN.fullmatch(name) or name == "main":
        raise MaintenanceError(f"invalid tag name {name!r}: letters, digits, '.', '_' and '-'")
    if name in table.metadata.refs:
        raise MaintenanceError(f"{name!r} already names a snapshot of {table.name()[-1]}")
    if snapshot_id is None:
        current = table.current_snapshot()
        if current is None:
            raise SnapshotNotFoundError(f"{table.name()[-1]} has no snapshot to tag")
        snapshot_id = current.snapshot_id
    elif table.snapshot_by_id(snapshot_id) is None:
        raise SnapshotNotFoundError(f"{table.name()[-1]} has no snapshot {snapshot_id}")
    table.manage_snapshots().create_tag(snapshot_id, name).commit()
    return snapshot_id
