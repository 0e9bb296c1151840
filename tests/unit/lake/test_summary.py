"""The ``k2.*`` snapshot summary entries say which K2 writer made a commit and what it recorded."""

from __future__ import annotations

import pytest

from k2.lake.summary import (
    KAFKA_OFFSETS,
    LOAD_ID,
    LOAD_ROWS_REJECTED,
    MAINTENANCE,
    ROLLUP_TRADES_SNAPSHOT,
    SOURCE,
    offsets_in,
    rows_rejected_in,
    writer_of,
)

WRITERS = [
    ({LOAD_ID: "20260101T000000Z-abcd1234", LOAD_ROWS_REJECTED: "0"}, "load"),
    ({SOURCE: "kafka", KAFKA_OFFSETS: '{"t":{"0":5}}'}, "stream"),
    ({MAINTENANCE: "compaction", "k2.symbols": "{}"}, "compaction"),
    ({ROLLUP_TRADES_SNAPSHOT: "42"}, "rollup"),
    ({"added-records": "3", "trino_query_id": "x"}, None),
]


@pytest.mark.parametrize(("summary", "writer"), WRITERS, ids=[str(w) for _, w in WRITERS])
def test_each_writer_is_named_from_its_entries(summary: dict[str, str], writer: str | None) -> None:
    assert writer_of(summary) == writer


def test_offsets_decode_with_integer_partitions() -> None:
    assert offsets_in({KAFKA_OFFSETS: '{"a":{"1":7,"0":12}}'}) == {"a": {1: 7, 0: 12}}
    assert offsets_in({LOAD_ID: "x"}) is None


def test_a_summary_without_a_reject_count_has_none() -> None:
    """Loads made before K2 recorded rejects have no count, which is not zero."""
    assert rows_rejected_in({LOAD_ID: "x"}) is None
    assert rows_rejected_in({LOAD_ID: "x", LOAD_ROWS_REJECTED: "0"}) == 0
