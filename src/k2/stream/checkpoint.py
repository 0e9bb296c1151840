"""Kafka offsets kept in Iceberg snapshot summaries, committed atomically with the rows.

Each sink commit to a table records, under ``k2.kafka.offsets``, the next offset to read for
every partition of every topic that feeds the table, merged with what earlier commits recorded.
Other snapshots (direct loads, compaction) carry no offsets, so the reader walks back through
the table's history to the newest snapshot that does.
"""

from __future__ import annotations

import orjson
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of

#: Snapshot summary property holding ``{topic: {partition: next offset}}`` as JSON.
OFFSETS_PROPERTY = "k2.kafka.offsets"

#: Next offset to read, per topic and partition.
Offsets = dict[str, dict[int, int]]


def last_sink_snapshot(table: Table) -> Snapshot | None:
    """The newest snapshot of ``table`` (in its current history) that recorded Kafka offsets."""
    current = table.current_snapshot()
    if current is None:
        return None
    for snapshot in ancestors_of(current, table.metadata):
        if snapshot.summary and snapshot.summary.additional_properties.get(OFFSETS_PROPERTY):
            return snapshot
    return None


def committed_offsets(table: Table) -> Offsets:
    """The offsets recorded by the newest snapshot of ``table`` that recorded any; empty if none."""
    snapshot = last_sink_snapshot(table)
    if snapshot is None or snapshot.summary is None:
        return {}
    decoded: dict[str, dict[str, int]] = orjson.loads(
        snapshot.summary.additional_properties[OFFSETS_PROPERTY]
    )
    return {topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in decoded.items()}


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
