"""Kafka offsets kept in Iceberg snapshot summaries, committed atomically with the rows.

Each sink commit to a table records, under ``k2.kafka.offsets``, the next offset to read for
every partition of every topic that feeds the table, merged with what earlier commits recorded.
Other snapshots (direct loads, compaction, another engine's commits such as Trino's ``optimize``)
carry no offsets, so the reader finds the newest snapshot that does, in the earlier metadata
files when expiry cut the history (:mod:`k2.lake.history`): the sink never loses its exactly-once
position to a maintenance commit.

Several sinks of one consumer group commit to the same tables, each for its own partitions: a
commit's offsets are made from the table's head when it is built, and made again when it lost a
race with another sink's commit (:meth:`k2.lake.writer.LakeWriter.append`), so every commit
records every partition's position, its own and the others'.
"""

from __future__ import annotations

import orjson
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from k2.lake.history import newest_with
from k2.lake.summary import KAFKA_OFFSETS, SOURCE, Offsets, offsets_in

#: Snapshot summary property holding ``{topic: {partition: next offset}}`` as JSON.
OFFSETS_PROPERTY = KAFKA_OFFSETS

__all__ = [
    "OFFSETS_PROPERTY",
    "Offsets",
    "committed_offsets",
    "encode",
    "last_sink_snapshot",
    "merged",
    "recorded_offsets",
    "sink_summary",
]


def recorded_offsets(snapshot: Snapshot) -> Offsets | None:
    """The offsets ``snapshot`` recorded; None for a snapshot that recorded none."""
    return offsets_in(snapshot.summary.additional_properties) if snapshot.summary else None


def last_sink_snapshot(table: Table) -> Snapshot | None:
    """The newest snapshot of ``table`` that recorded Kafka offsets, wherever its history keeps it."""
    return newest_with(table, KAFKA_OFFSETS)


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
