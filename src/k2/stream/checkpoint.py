"""Kafka offsets kept in Iceberg snapshot summaries, committed atomically with the rows.

Each sink commit to a table records, under ``k2.kafka.offsets``, the next offset to read for
every partition of every topic that feeds the table, merged with what earlier commits recorded.
Other snapshots (direct loads, compaction, other engines' commits) carry no offsets, so the
reader walks back through the table's history to the newest snapshot that does.

Several sinks of one consumer group commit to the same tables, each for its own partitions: a
commit's offsets are made from the table's head when it is built, and made again when it lost a
race with another sink's commit (:meth:`k2.lake.writer.LakeWriter.append`), so every commit
records every partition's position, its own and the others'.
"""

from __future__ import annotations

import orjson
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

#: Snapshot summary property holding ``{topic: {partition: next offset}}`` as JSON.
OFFSETS_PROPERTY = "k2.kafka.offsets"

#: Next offset to read, per topic and partition.
Offsets = dict[str, dict[int, int]]


def recorded_offsets(snapshot: Snapshot) -> Offsets | None:
    """The offsets ``snapshot`` recorded; None for a snapshot that recorded none."""
    raw = snapshot.summary.additional_properties.get(OFFSETS_PROPERTY) if snapshot.summary else None
    if not raw:
        return None
    decoded: dict[str, dict[str, int]] = orjson.loads(raw)
    return {topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in decoded.items()}


def last_sink_snapshot(table: Table) -> Snapshot | None:
    """The newest snapshot of ``table`` (in its current history) that recorded Kafka offsets."""
    current = table.current_snapshot()
    if current is None:
        return None
    for snapshot in ancestors_of(current, table.metadata):
        if recorded_offsets(snapshot) is not None:
            return snapshot
    return None


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
    return {"k2.source": "kafka", OFFSETS_PROPERTY: encode(merged(committed_offsets(table), consumed))}
