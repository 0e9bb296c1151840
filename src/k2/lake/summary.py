"""The ``k2.*`` entries K2's writers put in Iceberg snapshot summaries, in one place.

Every K2 commit says in its summary which writer made it and what a later reader or auditor
needs to know about it:

- a load (``k2 ingest``): ``k2.load.id``, ``k2.load.source`` (what was loaded),
  ``k2.load.source-kind`` (``asx``, ``synthetic``, ``file``), ``k2.load.rows-rejected`` (the
  load's rejected rows so far, over all its tables; its last commit to a table carries the final
  count) and ``k2.load.reject-file`` (the name of its reject file in the data directory's
  ``rejects/``, present once a row was rejected);
- the stream sink: ``k2.source`` = ``kafka`` and ``k2.kafka.offsets``
  (:mod:`k2.stream.checkpoint`);
- a compaction: ``k2.maintenance`` = ``compaction``;
- a refresh of the 1-minute rollup: ``k2.rollup.trades-snapshot``;
- every append and compaction: ``k2.symbols``, the cumulative symbols per exchange.

Other engines' commits (Trino's, Spark's) carry none of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

LOAD_ID = "k2.load.id"
LOAD_SOURCE = "k2.load.source"
LOAD_SOURCE_KIND = "k2.load.source-kind"
LOAD_ROWS_REJECTED = "k2.load.rows-rejected"
LOAD_REJECT_FILE = "k2.load.reject-file"
SOURCE = "k2.source"
KAFKA_OFFSETS = "k2.kafka.offsets"
MAINTENANCE = "k2.maintenance"
ROLLUP_TRADES_SNAPSHOT = "k2.rollup.trades-snapshot"

#: Next offset to read, per topic and partition.
Offsets = dict[str, dict[int, int]]


def offsets_in(summary: Mapping[str, str]) -> Offsets | None:
    """The Kafka offsets a summary records (``k2.kafka.offsets``); None when it records none."""
    raw = summary.get(KAFKA_OFFSETS)
    if not raw:
        return None
    decoded: dict[str, dict[str, int]] = orjson.loads(raw)
    return {topic: {int(p): int(o) for p, o in parts.items()} for topic, parts in decoded.items()}


def rows_rejected_in(summary: Mapping[str, str]) -> int | None:
    """The rejected rows a load's summary records so far; None when it records no count."""
    raw = summary.get(LOAD_ROWS_REJECTED)
    return int(raw) if raw else None


def writer_of(summary: Mapping[str, str]) -> str | None:
    """Which K2 writer made a commit: ``load``, ``stream``, ``compaction`` or ``rollup``; None
    when the summary does not say (another engine's commit, or an append by hand).
    """
    if LOAD_ID in summary:
        return "load"
    if summary.get(SOURCE) == "kafka" or KAFKA_OFFSETS in summary:
        return "stream"
    if summary.get(MAINTENANCE) == "compaction":
        return "compaction"
    if ROLLUP_TRADES_SNAPSHOT in summary:
        return "rollup"
    return None
