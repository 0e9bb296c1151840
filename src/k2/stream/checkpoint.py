"""Kafka offsets kept in Iceberg snapshot summaries, committed atomically with the rows.

Each sink commit to a table records, under ``k2.kafka.offsets``, the next offset to read for
every partition of every topic that feeds the table, merged with what earlier commits recorded.
Other snapshots (direct loads, compaction, another engine's commits such as Trino's ``optimize``)
carry no offsets, so the reader walks back through the table's history to the newest snapshot
that does. When that history was cut short (another engine expired the snapshots that carried
them), the reader looks in the table's earlier metadata files, which Iceberg keeps and lists in
its metadata log, so the sink never loses its exactly-once position to a maintenance commit.

Several sinks of one consumer group commit to the same tables, each for its own partitions: a
commit's offsets are made from the table's head when it is built, and made again when it lost a
race with another sink's commit (:meth:`k2.lake.writer.LakeWriter.append`), so every commit
records every partition's position, its own and the others'.
"""

from __future__ import annotations

import orjson
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot, ancestors_of

from k2.lake.summary import KAFKA_OFFSETS, SOURCE, Offsets, offsets_in

#: Snapshot summary property holding ``{topic: {partition: next offset}}`` as JSON.
OFFSETS_PROPERTY = KAFKA_OFFSETS

__all__ = [
    "EARLIER_KEPT",
    "OFFSETS_PROPERTY",
    "Offsets",
    "committed_offsets",
    "encode",
    "last_sink_snapshot",
    "merged",
    "recorded_offsets",
    "sink_summary",
]

#: What each earlier metadata file says (they never change once written), so that a table whose
#: history was cut is searched once per file and process, not at every call.
_EARLIER: dict[str, tuple[Snapshot | None, bool]] = {}
EARLIER_KEPT = 4096


def recorded_offsets(snapshot: Snapshot) -> Offsets | None:
    """The offsets ``snapshot`` recorded; None for a snapshot that recorded none."""
    return offsets_in(snapshot.summary.additional_properties) if snapshot.summary else None


def last_sink_snapshot(table: Table) -> Snapshot | None:
    """The newest snapshot of ``table`` (in its current history) that recorded Kafka offsets;
    from the earlier metadata files when expiry removed it from the current ones.
    """
    found, cut = _newest_with_offsets(table.metadata)
    if found is not None or not cut:
        return found
    for entry in reversed(table.metadata.metadata_log):
        known = _EARLIER.get(entry.metadata_file)
        if known is None:
            try:
                earlier = FromInputFile.table_metadata(table.io.new_input(entry.metadata_file))
            except (OSError, ValueError):
                continue  # removed by metadata clean-up; an older file may still have it
            known = _newest_with_offsets(earlier)
            if len(_EARLIER) >= EARLIER_KEPT:
                _EARLIER.clear()
            _EARLIER[entry.metadata_file] = known
        found, cut = known
        if found is not None or not cut:
            return found
    return None


def _newest_with_offsets(metadata: TableMetadata) -> tuple[Snapshot | None, bool]:
    """The newest snapshot in the current history of ``metadata`` that recorded offsets, and
    whether that history is cut short (snapshots before its oldest were expired).
    """
    current = metadata.current_snapshot()
    if current is None:
        return None, False
    oldest = current
    for snapshot in ancestors_of(current, metadata):
        if recorded_offsets(snapshot) is not None:
            return snapshot, False
        oldest = snapshot
    # Java's Iceberg keeps an expired parent's id; pyiceberg clears it, but the oldest snapshot
    # left then has a sequence number past the table's first (1; format 1 tables have none).
    return None, oldest.parent_snapshot_id is not None or (oldest.sequence_number or 0) > 1


def committed_offsets(table: Table) -> Offsets:
    """The offsets recorded by the newest snapshot of ``table`` that recorded any; empty if none."""
    snapshot = last_sink_snapshot(table)
    return (recorded_offsets(snapshot) if snapshot else None) or {}


def merged(recorded: Offsets, consumed: Offsets) -> Offsets:
    """``recorded`` advanced by ``consumed``; an offset never moves backwards."""
    result = {topic: dict(parts) for topic, parts in recorded.items()}
    for topic, parts in consumed.items():
        known = result.setdefault(topic, {})
        for partition, offset in parts.items():
            known[partition] = max(offset, known.get(partition, 0))
    return result


def encode(offsets: Offsets) -> str:
    """The summary property value of ``offsets``."""
    return orjson.dumps(
        {topic: {str(p): o for p, o in sorted(parts.items())} for topic, parts in sorted(offsets.items())}
    ).decode()


def sink_summary(consumed: Offsets, table: Table) -> dict[str, str]:
    """A sink commit's summary on ``table``'s head: the offsets recorded there (by any sink of the
    group) advanced by those ``consumed``.
    """
    return {SOURCE: "kafka", OFFSETS_PROPERTY: encode(merged(committed_offsets(table), consumed))}
