"""Schema evolution on the real platform: a trade v3 that adds an optional field is accepted by the
registry (BACKWARD), and its messages, mixed with v2 ones on the same topic, reach the table, which
grows the column; a change that is not backward compatible is refused by the registry, and a
writer that would retype a column the table has is dead-lettered."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from pyiceberg.types import StringType

from k2.api import create_app
from k2.errors import ConfigurationError
from k2.ingest.producer import MarketProducer
from k2.ingest.sources.base import SourceBatch
from k2.kafka.avro.codec import HEADER, RecordCodec
from k2.kafka.clients import registry_client
from k2.kafka.dead_letters import ERROR_HEADER
from k2.kafka.schema_registry import register
from k2.kafka.topics import DataType, market_topic, value_subject
from k2.lake.maintenance import compact
from k2.lake.tables import TRADES
from k2.obs.metrics import K2Metrics
from k2.query.ticks import TickQuery, trades
from k2.schemas import TRADE, Column, Kind, Record
from k2.settings import ApiSettings, K2Settings
from k2.stream.sink import Sink, SinkReport
from k2.testing import EmbeddedLake, make_trade_rows, trade_row
from tests.fixtures.platform import dead_letters, isolated

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

ADDED = "venue_order_id"
#: Backward compatible with v2: one more optional field, null by default.
TRADE_V3 = Record(
    TRADE.name,
    3,
    TRADE.doc,
    (*TRADE.columns, Column(ADDED, Kind.STRING, "The venue's id of the resting order.", required=False)),
)
#: Not backward compatible with v3: a new required field without a default cannot read v3 data.
TRADE_V4 = Record(TRADE.name, 4, TRADE.doc, (*TRADE_V3.columns, Column("fee", Kind.DECIMAL, "Venue fee.")))
#: Compatible within its own subject, but retypes the column v3 added to the shared table.
TRADE_V3_LONG = Record(
    TRADE.name,
    3,
    TRADE.doc,
    (*TRADE.columns, Column(ADDED, Kind.LONG, "Numeric order id.", required=False)),
)
DAY = datetime(2024, 1, 8, tzinfo=UTC)
KEY = {"X-API-Key": "key"}


@pytest.fixture
def settings(platform: K2Settings, tmp_path: Path) -> K2Settings:
    """The platform with a catalog, topic prefix and consumer group of this test's own."""
    return isolated(platform, tmp_path, partitions=2).model_copy(
        update={"api": ApiSettings(keys=SecretStr("t:key"))}
    )


def _rows(first: int, count: int, exchange: str = "SYN") -> pa.Table:
    return make_trade_rows(
        [
            trade_row("EVO", DAY + timedelta(seconds=i), "10.5", "7", sequence=i, exchange=exchange)
            for i in range(first, first + count)
        ]
    )


def _written(record: Record, schema_id: int, rows: pa.Table, added: list[Any]) -> list[bytes]:
    """Values as any Avro client writes ``record``'s schema, the added field set to ``added``."""
    schema = fastavro.parse_schema(record.avro_schema())
    values = []
    for row, value in zip(rows.to_pylist(), added, strict=True):
        buffer = io.BytesIO()
        buffer.write(HEADER.pack(0, schema_id))
        fastavro.schemaless_writer(buffer, schema, row | {ADDED: value})
        values.append(buffer.getvalue())
    return values


def _send(settings: K2Settings, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, value=value, key=b"EVO")
    assert producer.flush(30) == 0


def _run_sink(settings: K2Settings) -> SinkReport:
    lake = EmbeddedLake.open(settings)
    try:
        return Sink(settings, lake.writer, K2Metrics(CollectorRegistry())).run(
            threading.Event(), idle_exit_s=4.0
        )
    finally:
        lake.close()


def test_an_added_optional_field_reaches_the_table_and_an_incompatible_change_is_refused(
    settings: K2Settings,
) -> None:
    prefix = settings.kafka.topic_prefix
    topic = market_topic("equities", DataType.TRADES, "SYN", prefix)
    subject = value_subject(topic)
    first, before, after = _rows(1, 20), _rows(21, 10), _rows(31, 10)
    order_ids = [f"O-{i}" if i % 4 else None for i in range(31, 41)]

    with MarketProducer(settings.kafka) as producer, registry_client(settings.kafka) as registry:
        # v2 through K2's own producer: creates the topic and registers v2 under BACKWARD.
        producer.produce_batch(SourceBatch(TRADES, first, first.num_rows, 0))
        producer.flush()
        assert _run_sink(settings).rows_written == first.num_rows

        v2_id = register(registry, subject, RecordCodec(TRADE).schema)
        v3_id = register(registry, subject, TRADE_V3.avro_schema())
        assert v3_id != v2_id
        v2 = RecordCodec(TRADE).encode(before, v2_id)
        v3 = _written(TRADE_V3, v3_id, after, order_ids)
        _send(settings, topic, [value for pair in zip(v2, v3, strict=True) for value in pair])

        report = _run_sink(settings)
        assert (report.rows_written, report.dead_letters) == (before.num_rows + after.num_rows, 0)

        # Not backward compatible: the registry refuses it, and K2 says so.
        with pytest.raises(ConfigurationError) as refused:
            register(registry, subject, TRADE_V4.avro_schema())
        message = str(refused.value)
        assert f"schema registry refused the schema of {subject}" in message
        assert "incompatible" in message.lower()
        assert "fee" in message  # Apicurio names the offending field
    with SchemaRegistryClient({"url": settings.kafka.schema_registry_url}) as registry:
        assert registry.get_versions(subject) == [1, 2]
        assert registry.get_compatibility(subject) == "BACKWARD"

    lake = EmbeddedLake.open(settings)
    try:
        table = lake.writer.table(TRADES)
        field = table.schema().find_field(ADDED)
        assert (field.field_type, field.required) == (StringType(), False)
        assert [f.name for f in table.schema().fields] == [*TRADE.names, ADDED]
        stored = table.scan().to_arrow().sort_by("source_sequence")
        assert stored["source_sequence"].to_pylist() == list(range(1, 41))
        assert stored[ADDED].to_pylist() == [None] * 30 + order_ids

        # The lake's readers still answer with the record's columns, before and after compaction
        # rewrites the old and new files of the day together.
        query = TickQuery(symbols=("EVO",), exchange="SYN", limit=100)
        page = trades(lake.engine, query)
        assert page.rows.schema == TRADE.arrow_schema()
        assert page.rows["source_sequence"].to_pylist() == list(range(1, 41))
        assert compact(lake.writer.table(TRADES), TRADES, min_files=2).rows_rewritten == 40
        assert trades(lake.engine, query).rows.equals(page.rows)
        stored = lake.writer.table(TRADES).scan().to_arrow().sort_by("source_sequence")
        assert stored[ADDED].to_pylist() == [None] * 30 + order_ids
    finally:
        lake.close()

    # The API too, with v3 messages still in Kafka joined to the lake's rows.
    _send(settings, topic, _written(TRADE_V3, v3_id, _rows(41, 5), ["O-41"] * 5))
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        window: dict[str, str | int] = {"symbol": "EVO", "start_time": DAY.isoformat(), "limit": 500}
        lake_only = client.get("/v1/trades", params=window, headers=KEY)
        assert lake_only.status_code == 200, lake_only.text
        assert [r["source_sequence"] for r in lake_only.json()["data"]] == list(range(1, 41))
        live = client.get("/v1/trades", params={**window, "include_live": "true"}, headers=KEY)
        assert live.status_code == 200, live.text
        assert [r["source_sequence"] for r in live.json()["data"]] == list(range(1, 46))


def test_a_writer_that_would_retype_an_added_column_is_dead_lettered(settings: K2Settings) -> None:
    """Each topic's subject evolves on its own, so the registry cannot see two venues adding one
    field with two types; the table can, and the sink refuses the second writer's messages."""
    prefix = settings.kafka.topic_prefix
    topics = {
        exchange: market_topic("equities", DataType.TRADES, exchange, prefix) for exchange in ("SYN", "SYX")
    }
    with MarketProducer(settings.kafka) as producer, registry_client(settings.kafka) as registry:
        for exchange in topics:
            rows = _rows(1, 3, exchange)
            producer.produce_batch(SourceBatch(TRADES, rows, rows.num_rows, 0))
        as_text = register(registry, value_subject(topics["SYN"]), TRADE_V3.avro_schema())
        as_long = register(registry, value_subject(topics["SYX"]), TRADE_V3_LONG.avro_schema())
    _send(settings, topics["SYN"], _written(TRADE_V3, as_text, _rows(4, 2), ["A", "B"]))
    report = _run_sink(settings)
    assert (report.rows_written, report.dead_letters) == (8, 0)

    refused = _written(TRADE_V3_LONG, as_long, _rows(4, 2, "SYX"), [1, 2])
    _send(settings, topics["SYX"], refused)
    report = _run_sink(settings)
    assert (report.rows_written, report.dead_letters) == (0, 2)
    letters = dead_letters(settings, "SYX", 2)
    assert sorted(m.value() or b"" for m in letters) == sorted(refused)
    for letter in letters:
        reason = dict(letter.headers() or [])[ERROR_HEADER]
        assert isinstance(reason, bytes)
        assert reason.startswith(f"schema {as_long}: ".encode())
        assert f"{ADDED} is string, not long: K2 never retypes a column".encode() in reason
