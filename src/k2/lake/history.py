"""Finding K2's own records in a table's history, whoever committed since.

Some of what K2 keeps in snapshot summaries is carried forward by its own commits only: the
stream sink's Kafka offsets (``k2.kafka.offsets``) and the symbols per exchange
(``k2.symbols``). Other commits carry none (a load carries no offsets; another engine's commit,
such as Trino's ``optimize``, carries neither), so a reader walks back from a snapshot to the
newest one that has the entry. When that history was cut short (another engine expired the
snapshots that carried it), the reader looks in the table's earlier metadata files, which Iceberg
keeps and lists in its metadata log, newest first.
"""

from __future__ import annotations

from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot, ancestors_of

#: What each earlier metadata file says (they never change once written), so that a table whose
#: history was cut is searched once per file, entry and start in a process, not at every call.
_EARLIER: dict[tuple[str, str, int | None], tuple[Snapshot | None, bool]] = {}
EARLIER_KEPT = 4096


def newest_with(table: Table, entry: str, snapshot_id: int | None = None) -> Snapshot | None:
    """The newest snapshot whose summary has ``entry``, among the snapshot ``snapshot_id``
    (default: the current one) and its ancestors; from the earlier metadata files when expiry
    removed it from the current ones. None when no snapshot ever had it.
    """
    found, cut = _newest_with(table.metadata, entry, snapshot_id)
    if found is not None or not cut:
        return found
    for logged in reversed(table.metadata.metadata_log):
        key = (logged.metadata_file, entry, snapshot_id)
        known = _EARLIER.get(key)
        if known is None:
            try:
                earlier = FromInputFile.table_metadata(table.io.new_input(logged.metadata_file))
            except (OSError, ValueError):
                continue  # removed by metadata clean-up; an older file may still have it
            known = _newest_with(earlier, entry, snapshot_id)
            if len(_EARLIER) >= EARLIER_KEPT:
                _EARLIER.clear()
            _EARLIER[key] = known
        found, cut = known
        if found is not None or not cut:
            return found
    return None


def _newest_with(
    metadata: TableMetadata, entry: str, snapshot_id: int | None
) -> tuple[Snapshot | None, bool]:
    """The newest snapshot with ``entry`` from ``snapshot_id`` back in ``metadata``, and whether
    that history is cut short (snapshots before its oldest were expired, or ``snapshot_id`` is
    not in it: a metadata file older or newer than that snapshot).
    """
    start = metadata.current_snapshot() if snapshot_id is None else metadata.snapshot_by_id(snapshot_id)
    if start is None:
        return None, snapshot_id is not None
    oldest = start
    for snapshot in ancestors_of(start, metadata):
        if snapshot.summary is not None and snapshot.summary.additional_properties.get(entry):
            return snapshot, False
        oldest = snapshot
    # Java's Iceberg keeps an expired parent's id; pyiceberg clears it, but the oldest snapshot
    # left then has a sequence number past the table's first (1; format 1 tables have none).
    return None, oldest.parent_snapshot_id is not None or (oldest.sequence_number or 0) > 1
