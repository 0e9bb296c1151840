"""Correlation ids: one per produced batch, read back from a message's headers."""

from __future__ import annotations

from confluent_kafka import Message

from k2.kafka.correlation import CORRELATION_HEADER, CorrelationIds, correlation_id, correlation_ids


def test_each_batch_of_a_run_gets_the_next_id_under_the_runs_prefix() -> None:
    ids = CorrelationIds("run7")
    assert [ids.next(), ids.next(), ids.next()] == ["run7-1", "run7-2", "run7-3"]
    assert CorrelationIds().run != CorrelationIds().run


def test_a_messages_id_is_read_from_its_header_whatever_else_it_carries() -> None:
    tagged = Message(topic="t", headers=[("other", b"x"), (CORRELATION_HEADER, b"abc-4")])
    untagged = Message(topic="t", headers=[("other", b"x")])
    bare = Message(topic="t")
    assert correlation_id(tagged) == "abc-4"
    assert correlation_id(untagged) is None
    assert correlation_id(bare) is None
    assert correlation_ids([tagged, untagged, bare, tagged]) == {"abc-4"}
