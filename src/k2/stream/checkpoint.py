"""Kafka offsets kept in Iceberg snapshot summaries, committed atomically with the rows.

Each sink commit to a table records, under ``k2.kafka.offsets``, the next offset to read for
every partition of every topic that feeds the table, merged with what earlier commits recorded.
Other snapshots (direct loads, compaction) carry no offsets, so the reader walks back through
the table's history to the newest snapshot that does.
"""

from __future__ import annotations

import orjson
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

#: Snapshot summary property holding ``{topic: {partition: next offset}}`` as JSON.
OFFSETS_PROPERTY = "k2.kafka.offsets"

#: Next offset to read, per topic and partition.
Offsets = dict[str, dict[int, int]]


def committed_offsets(table: Table) -> Offsets:
    """The offsets recorded by the newest snapshot of ``table`` that recorded any; empty if none."""
    current = table.current_snapshot()
    if current is None:
        return {}
    for snapshot in ancestors_of(current, table.metadata):
        raw = snapshot.summary.additional_properties.get(OFFSETS_PROPERTY) if snapshot.summary else None
        if raw:
            decoded: dict[str, dict[str, int]] = orjson.loads(raw)
            return {topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in decoded.items()}
    return {}


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
