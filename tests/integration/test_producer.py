"""The produce half of the pipeline on the real platform: the ASX sample through MarketProducer into
Kafka and the registry, read back with a plain consumer and the codec, row for row what the direct
loader writes."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.errors import NotFoundError
from k2.ingest.errors import DeliveryFailedError
from k2.ingest.loader import Loader, new_load_id, reject_file_for
from k2.ingest.producer import MarketProducer
from k2.ingest.report import IngestReport
from k2.ingest.sources.asx import AsxSource
from k2.ingest.sources.base import SourceBatch
from k2.kafka.avro.codec import HEADER, Decoded, RecordCodec, SchemaLookup
from k2.kafka.errors import KafkaUnavailableError
from k2.kafka.topics import DataType, dlq_topic, market_topic, value_subject
from k2.lake.tables import DIVIDENDS, INSTRUMENTS, QUOTES, SPLITS, TRADES, TableSpec
from k2.settings import K2Settings
from k2.testing import EmbeddedLake
from k2.testing.factories import make_trade_rows, trade_row
from tests.fixtures.platform import isolated

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

PARTITIONS = 3


def _isolated(platform: K2Settings, data_dir: Path) -> K2Settings:
    """The platform with a catalog and a topic prefix of this test's own."""
    return isolated(platform, data_dir, partitions=PARTITIONS)


def _topic(settings: K2Settings, spec: TableSpec) -> str:
    return market_topic("equities", DataType.of(spec.record), "ASX", settings.kafka.topic_prefix)


def _consume(settings: K2Settings, topic: str) -> list[Message]:
    """Every message of ``topic``, read from the start of each partition to its end."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"k2-test-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                assert message.error() is None, message.error()
                messages.append(message)
                offset, partition = message.offset(), message.partition()
                assert offset is not None
                assert partition is not None
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
        assert not pending, f"partitions {pending} of {topic} were not read to their end"
        assert len(messages) == sum(ends.values())
        return messages
    finally:
        consumer.close()


def _schema_lookup(registry: SchemaRegistryClient) -> SchemaLookup:
    def schema_for(schema_id: int) -> dict[str, Any]:
        try:
            registered = registry.get_schema(schema_id)
        except SchemaRegistryError as error:
            if error.http_status_code == HTTPStatus.NOT_FOUND:
                raise NotFoundError(f"no schema {schema_id}") from error
            raise
        schema: dict[str, Any] = orjson.loads(registered.schema_str or "{}")
        return schema

    return schema_for


@dataclass
class Produced:
    """The ASX sample produced once: the settings used, the report and what each topic holds."""

    settings: K2Settings
    report: IngestReport
    messages: dict[str, list[Message]]


@pytest.fixture(scope="module")
def produced(
    platform: K2Settings, asx_sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Produced]:
    settings = _isolated(platform, tmp_path_factory.mktemp("producer"))
    lake = EmbeddedLake.open(settings)
    load_id = new_load_id()
    rejects = reject_file_for(settings.reject_dir, load_id)
    source = AsxSource(
        asx_sample, rejects, batch_rows=settings.ingest.read_batch_rows, ingested_at=datetime.now(UTC)
    )
    try:
        with MarketProducer(settings.kafka) as producer:
            loader = Loader(lake.writer, commit_rows=settings.ingest.commit_rows, producer=producer)
            report = loader.run(source, rejects, load_id)
        messages = {
            _topic(settings, spec): _consume(settings, _topic(settings, spec)) for spec in (TRADES, QUOTES)
        }
        yield Produced(settings, report, messages)
    finally:
        lake.close()


def _decoded(settings: K2Settings, spec: TableSpec, messages: list[Message]) -> Decoded:
    with SchemaRegistryClient({"url": settings.kafka.schema_registry_url}) as registry:
        return RecordCodec(spec.record).decode([m.value() for m in messages], _schema_lookup(registry))


def _lake_rows(lake: EmbeddedLake, spec: TableSpec) -> pa.Table:
    return lake.writer.table(spec).scan().to_arrow().cast(spec.record.arrow_schema())


def _comparable(rows: pa.Table) -> pa.Table:
    """Rows in message id order, without the receive time, which differs between two loads."""
    return rows.drop_columns(["ingestion_timestamp"]).sort_by("message_id")


@pytest.mark.parametrize("spec", [TRADES, QUOTES], ids=lambda s: s.name)
def test_each_row_the_loader_writes_is_one_message_on_its_topic(
    produced: Produced, asx_lake: EmbeddedLake, spec: TableSpec
) -> None:
    """Kafka holds exactly the rows the direct loader writes to the lake, each once, decoded
    value for value (decimals, microsecond times, lists and maps)."""
    topic = _topic(produced.settings, spec)
    expected = _lake_rows(asx_lake, spec)
    messages = produced.messages[topic]
    assert produced.report.topics[topic] == len(messages) == expected.num_rows
    decoded = _decoded(produced.settings, spec, messages)
    assert decoded.errors == []
    assert _comparable(decoded.rows).equals(_comparable(expected))


def test_the_sample_counts_are_the_source_row_counts(produced: Produced, asx_sample: Path) -> None:
    """Every data line of the tick files became one message: nothing rejected, nothing dropped."""
    for spec in (TRADES, QUOTES):
        lines = sum(
            sum(1 for line in path.read_bytes().splitlines() if line.strip())
            for path in (asx_sample / spec.name).glob("*.csv")
        )
        assert len(produced.messages[_topic(produced.settings, spec)]) == lines
    assert produced.report.rows_rejected == 0
    assert produced.report.messages_failed == 0


def test_messages_are_keyed_by_symbol_and_a_symbol_keeps_one_partition_in_order(produced: Produced) -> None:
    """The key is the row's symbol in UTF-8, so one symbol's ticks stay on one partition, in the
    order of the source file."""
    for spec in (TRADES, QUOTES):
        messages = produced.messages[_topic(produced.settings, spec)]
        rows = _decoded(produced.settings, spec, messages).rows
        assert [m.key() for m in messages] == [s.encode() for s in rows["symbol"].to_pylist()]
        partitions: dict[bytes | None, set[int | None]] = {}
        ticks: dict[bytes | None, list[tuple[datetime, int]]] = {}
        for message, tick in zip(
            messages, rows.select(["timestamp", "source_sequence"]).to_pylist(), strict=True
        ):
            partitions.setdefault(message.key(), set()).add(message.partition())
            ticks.setdefault(message.key(), []).append((tick["timestamp"], tick["source_sequence"]))
        assert set(partitions) == {b"BHP", b"DVN", b"MWR", b"RIO"}
        assert all(len(p) == 1 for p in partitions.values())
        assert all(sequence == sorted(sequence) for sequence in ticks.values())


def test_subjects_are_registered_with_backward_compatibility(produced: Produced) -> None:
    """Each topic's subject holds the shipped v2 schema under BACKWARD compatibility, and every
    message names the id it was registered under (registering it again finds the same id)."""
    with SchemaRegistryClient({"url": produced.settings.kafka.schema_registry_url}) as registry:
        for spec in (TRADES, QUOTES):
            topic = _topic(produced.settings, spec)
            subject = value_subject(topic)
            codec = RecordCodec(spec.record)
            assert registry.get_compatibility(subject) == "BACKWARD"
            latest = registry.get_latest_version(subject)
            assert orjson.loads(latest.schema.schema_str or "{}") == codec.schema
            again = registry.register_schema(subject, Schema(orjson.dumps(codec.schema).decode(), "AVRO"))
            assert again == latest.schema_id
            ids = {HEADER.unpack_from(m.value() or b"")[1] for m in produced.messages[topic]}
            assert ids == {latest.schema_id}


def test_topics_and_the_dead_letter_topic_are_created(produced: Produced) -> None:
    admin = AdminClient({"bootstrap.servers": produced.settings.kafka.bootstrap_servers})
    topics = admin.list_topics(timeout=10).topics
    for spec in (TRADES, QUOTES):
        assert len(topics[_topic(produced.settings, spec)].partitions) == PARTITIONS
    assert len(topics[dlq_topic("ASX", produced.settings.kafka.topic_prefix)].partitions) == 1


def test_reference_data_still_goes_to_the_lake(produced: Produced, asx_lake: EmbeddedLake) -> None:
    lake = EmbeddedLake.open(produced.settings)
    try:
        for spec in (INSTRUMENTS, DIVIDENDS, SPLITS):
            expected = _lake_rows(asx_lake, spec).num_rows
            assert produced.report.tables[spec.name].rows_written == expected
            assert _lake_rows(lake, spec).num_rows == expected
    finally:
        lake.close()


def test_messages_the_broker_refuses_fail_the_flush(platform: K2Settings, tmp_path: Path) -> None:
    """A topic that takes no message of this size: every delivery fails, and leaving the producer
    raises a retryable error naming the failure rather than dropping the messages quietly."""
    settings = _isolated(platform, tmp_path)
    topic = _topic(settings, TRADES)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    created = admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "64"})])
    created[topic].result(timeout=30)
    rows = make_trade_rows([trade_row(sequence=i) for i in range(1, 11)])
    producer = MarketProducer(settings.kafka)
    with pytest.raises(DeliveryFailedError, match="10 messages were not delivered"), producer:
        producer.produce_batch(SourceBatch(TRADES, rows, rows.num_rows, 0))
    assert producer.stats.failed == 10
    assert producer.stats.messages == 0


def test_an_unreachable_registry_is_a_retryable_error(platform: K2Settings, tmp_path: Path) -> None:
    settings = _isolated(platform, tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    kafka = settings.kafka.model_copy(
        update={"schema_registry_url": f"http://127.0.0.1:{closed_port}/apis/ccompat/v7"}
    )
    rows = make_trade_rows([trade_row()])
    producer = MarketProducer(kafka)
    with pytest.raises(KafkaUnavailableError, match="did not answer"), producer:
        producer.produce_batch(SourceBatch(TRADES, rows, rows.num_rows, 0))
