"""The Kafka → Iceberg sink on the real platform: every message lands once, bad ones go to the
dead-letter topic, and a sink killed at any instant resumes without loss or duplicates."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import structlog
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from structlog.testing import capture_logs

from k2.api import create_app
from k2.domain.bars import Interval
from k2.ingest.producer import MarketProducer
from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.correlation import CORRELATION_HEADER
from k2.kafka.dead_letters import ERROR_HEADER, OFFSET_HEADER
from k2.kafka.topics import DataType, dlq_topic, market_topic, value_subject
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.obs.metrics import K2Metrics
from k2.query import CURRENT, BarQuery, QueryEngine, bars
from k2.settings import ApiSettings, K2Settings, QuerySettings
from k2.stream.checkpoint import committed_offsets
from k2.stream.sink import Sink
from k2.testing import EmbeddedLake, make_quote_rows, make_trade_rows, quote_row, trade_row
from tests.fixtures.platform import dead_letters, isolated

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

KEY = {"X-API-Key": "key"}


@pytest.fixture
def stream_settings(platform: K2Settings, tmp_path: Path) -> K2Settings:
    """The platform with a catalog, topic prefix and consumer group of this test's own."""
    return isolated(platform, tmp_path)


def _topic(settings: K2Settings, spec: TableSpec, exchange: str = "SYN") -> str:
    data_type = DataType.TRADES if spec is TRADES else DataType.QUOTES
    return market_topic("equities", data_type, exchange, settings.kafka.topic_prefix)


def _synthetic_rows(symbols: int = 3, days: int = 2, trades_per_day: int = 1500) -> dict[str, pa.Table]:
    market = SyntheticMarket(symbols=symbols, days=days, trades_per_day=trades_per_day, seed=11)
    source = SyntheticSource(market, batch_rows=1_000_000, ingested_at=datetime.now(UTC))
    parts: dict[str, list[pa.Table]] = {}
    for batch in source.batches():
        parts.setdefault(batch.table.name, []).append(batch.rows)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


def _produce(settings: K2Settings, spec: TableSpec, values: list[bytes], keys: list[str]) -> None:
    """Create the topic (and the venue's dead-letter topic) and produce ``values`` keyed by ``keys``."""
    topic = _topic(settings, spec)
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    wanted = [topic, dlq_topic("SYN", settings.kafka.topic_prefix)]
    existing = admin.list_topics(timeout=10).topics
    new = [
        NewTopic(t, num_partitions=settings.kafka.partitions, replication_factor=1)
        for t in wanted
        if t not in existing
    ]
    if new:
        for future in admin.create_topics(new).values():
            future.result()
    producer = Producer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "enable.idempotence": True, "linger.ms": 20}
    )
    for value, key in zip(values, keys, strict=True):
        while True:
            try:
                producer.produce(topic, value=value, key=key.encode())
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0


def _encode(settings: K2Settings, spec: TableSpec, rows: pa.Table) -> list[bytes]:
    codec = RecordCodec(spec.record)
    with SchemaRegistryClient({"url": settings.kafka.schema_registry_url}) as registry:
        schema_id = registry.register_schema(
            value_subject(_topic(settings, spec)), Schema(orjson.dumps(codec.schema).decode(), "AVRO")
        )
    return codec.encode(rows, schema_id)


def _produce_rows(settings: K2Settings, rows: dict[str, pa.Table]) -> None:
    for spec in (TRADES, QUOTES):
        table = rows[spec.name]
        _produce(settings, spec, _encode(settings, spec, table), table["symbol"].to_pylist())


def _run_sink(settings: K2Settings, idle_s: float = 4.0) -> Sink:
    lake = EmbeddedLake.open(settings)
    try:
        sink = Sink(settings, lake.writer, K2Metrics(CollectorRegistry()))
        sink.run(threading.Event(), idle_exit_s=idle_s)
    finally:
        lake.close()
    return sink


def _lake_ids(settings: K2Settings, spec: TableSpec) -> pa.ChunkedArray:
    lake = EmbeddedLake.open(settings)
    try:
        table = lake.writer.table(spec)
        return table.scan(selected_fields=("message_id",)).to_arrow()["message_id"]
    finally:
        lake.close()


def _end_offsets(settings: K2Settings, topic: str) -> dict[int, int]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "k2-test-offsets"}
    )
    try:
        ends = {}
        for partition in range(settings.kafka.partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = high
        return ends
    finally:
        consumer.close()


def test_every_message_lands_once_with_its_offsets(stream_settings: K2Settings) -> None:
    """All produced trades and quotes are in the lake once; the snapshot holds the offsets; a rerun
    (the same messages produced again, and the sink restarted) adds nothing."""
    rows = _synthetic_rows()
    _produce_rows(stream_settings, rows)

    small_commits = stream_settings.stream.model_copy(
        update={"commit_rows": 1000, "poll_messages": 500, "compact_min_files": 4}
    )
    sink = _run_sink(stream_settings.model_copy(update={"stream": small_commits}))
    assert sink.report.rows_written == rows["trades"].num_rows + rows["quotes"].num_rows
    assert sink.report.commits >= 8
    lake = EmbeddedLake.open(stream_settings)
    table = lake.writer.table(TRADES)
    summaries = [snapshot.summary for snapshot in table.snapshots() if snapshot.summary is not None]
    written = sum(
        int(s.additional_properties.get("added-data-files", 0))
        for s in summaries
        if s.operation.value == "append"
    )
    live_files = table.inspect.files().num_rows
    # The sink kept the 1-minute rollup in step: bars from it equal bars from the trades.
    hourly = BarQuery(Interval.parse("1h"))
    current = lake.engine.snapshot_id(lake.engine.table(TRADES), CURRENT)
    assert current is not None
    assert lake.engine.rollup_snapshot(lake.engine.table(TRADES), current) is not None
    from_ticks = QueryEngine(lake.catalog, lake.settings.lake.namespace, QuerySettings(rollup=False))
    assert bars(lake.engine, hourly).to_pylist() == bars(from_ticks, hourly).to_pylist()
    from_ticks.close()
    lake.close()
    assert any(s.additional_properties.get("k2.maintenance") == "compaction" for s in summaries)
    assert live_files < written  # the sink's compaction merged its small files
    for spec in (TRADES, QUOTES):
        ids = _lake_ids(stream_settings, spec)
        assert len(ids) == rows[spec.name].num_rows
        assert pc.count_distinct(ids).as_py() == len(ids)
        assert set(ids.to_pylist()) == set(rows[spec.name]["message_id"].to_pylist())
        lake = EmbeddedLake.open(stream_settings)
        topic = _topic(stream_settings, spec)
        assert committed_offsets(lake.writer.table(spec))[topic] == _end_offsets(stream_settings, topic)
        lake.close()

    _produce_rows(stream_settings, rows)  # a producer retrying the whole load
    again = _run_sink(stream_settings)
    assert again.report.rows_written == 0
    assert again.report.duplicates_skipped == rows["trades"].num_rows + rows["quotes"].num_rows
    assert len(_lake_ids(stream_settings, TRADES)) == rows["trades"].num_rows


def test_bad_messages_go_to_the_dead_letter_topic(stream_settings: K2Settings) -> None:
    """Garbage, a wrong magic byte, an unknown schema id, a truncated body and a quote on the
    trades topic are dead-lettered with the error and their source offset; every good message
    around them lands."""
    synthetic = _synthetic_rows(symbols=2, days=1, trades_per_day=500)
    rows = synthetic["trades"]
    good = _encode(stream_settings, TRADES, rows)
    a_quote = _encode(stream_settings, QUOTES, synthetic["quotes"].slice(0, 1))[0]  # valid Avro, wrong schema
    bad = [
        b"not avro at all",
        b"\x07" + good[0][1:],
        b"\x00\x7f\xff\xff\xf0" + good[0][5:],
        good[1][:12],
        a_quote,
    ]
    values = good[:100] + bad + good[100:]
    keys = rows["symbol"].to_pylist()[:100] + ["BAD"] * len(bad) + rows["symbol"].to_pylist()[100:]
    _produce(stream_settings, TRADES, values, keys)

    sink = _run_sink(stream_settings)
    assert sink.report.dead_letters == len(bad)
    assert len(_lake_ids(stream_settings, TRADES)) == rows.num_rows

    letters = dead_letters(stream_settings, "SYN", len(bad))
    assert sorted(m.value() or b"" for m in letters) == sorted(bad)
    for letter in letters:
        headers = dict(letter.headers() or [])
        assert headers[ERROR_HEADER]
        assert int(headers[OFFSET_HEADER] or b"-1") >= 0


@contextmanager
def _info_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The log events of the block, from INFO up, whatever level an earlier test configured."""
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**previous)


def test_a_message_is_followed_by_its_correlation_id(stream_settings: K2Settings) -> None:
    """Each batch K2's producer sends carries one correlation id in a Kafka header; the sink's
    commit log lines name the ids of the batches they committed, and a dead letter keeps its id;
    the sink's metrics show what it consumed and dead-lettered, and when it last committed.
    """
    market = SyntheticMarket(symbols=2, days=1, trades_per_day=400, seed=5)
    source = SyntheticSource(market, batch_rows=300, ingested_at=datetime.now(UTC))
    with MarketProducer(stream_settings.kafka) as producer:
        sent = sum(1 for batch in source.batches() if producer.produce_batch(batch))
    bad = Producer({"bootstrap.servers": stream_settings.kafka.bootstrap_servers})
    bad.produce(
        _topic(stream_settings, TRADES), b"not avro", b"BAD", headers=[(CORRELATION_HEADER, b"probe-1")]
    )
    assert bad.flush(30) == 0

    metrics = K2Metrics(CollectorRegistry())
    lake = EmbeddedLake.open(stream_settings)
    try:
        with _info_logs() as logs:
            Sink(stream_settings, lake.writer, metrics).run(threading.Event(), idle_exit_s=4.0)
    finally:
        lake.close()
    committed = {i for line in logs if line["event"] == "sink_commit" for i in line["correlation_ids"]}
    assert committed == {f"{producer.run_id}-{n}" for n in range(1, sent + 1)} | {"probe-1"}
    [letter] = dead_letters(stream_settings, "SYN", 1)
    assert dict(letter.headers() or [])[CORRELATION_HEADER] == b"probe-1"

    registry = metrics.registry
    rows = sum(t.num_rows for t in _synthetic_rows(symbols=2, days=1, trades_per_day=400).values())
    assert registry.get_sample_value("k2_sink_messages_total", {"table": "trades"}) is not None
    written = sum(
        registry.get_sample_value("k2_sink_messages_total", {"table": t}) or 0 for t in ("trades", "quotes")
    )
    assert written == rows + 1
    assert (registry.get_sample_value("k2_sink_last_commit_timestamp_seconds", {"table": "trades"}) or 0) > 0
    assert (
        registry.get_sample_value(
            "k2_kafka_dead_letters_total",
            {"topic": dlq_topic("SYN", stream_settings.kafka.topic_prefix), "component": "sink"},
        )
        == 1
    )


def _sink_process(settings: K2Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "K2_PROFILE": "platform",
        "K2_DATA_DIR": str(settings.data_dir),
        "K2_LAKE_CATALOG_NAME": settings.lake.catalog_name,
        "K2_LAKE_WAREHOUSE": settings.lake.warehouse or "",
        "K2_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "K2_KAFKA_PARTITIONS": str(settings.kafka.partitions),
        "K2_STREAM_GROUP_ID": settings.stream.group_id,
        "K2_STREAM_COMMIT_ROWS": "3000",
        "K2_STREAM_COMMIT_INTERVAL_S": "0.3",
        "K2_STREAM_POLL_MESSAGES": "1000",
        "K2_OBS_LOG_LEVEL": "INFO",
    }
    with (settings.data_dir / "sink.log").open("ab") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "k2.cli.main", "stream", "run", "--until-idle", "6"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def test_a_sink_killed_at_any_point_loses_and_duplicates_nothing(stream_settings: K2Settings) -> None:
    """kill -9 the sink again and again while it commits; after the last restart the lake holds
    every message exactly once and its recorded offsets reach the end of every partition."""
    rows = _synthetic_rows(symbols=4, days=2, trades_per_day=4000)
    _produce_rows(stream_settings, rows)

    kills = 0
    for delay in (2.5, 3.0, 3.5, 4.0, 4.5):
        process = _sink_process(stream_settings)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 3, "the sink finished before it could be killed; give it more data"
    final = _sink_process(stream_settings)
    assert final.wait(timeout=300) == 0

    for spec in (TRADES, QUOTES):
        ids = _lake_ids(stream_settings, spec)
        assert len(ids) == rows[spec.name].num_rows
        assert pc.count_distinct(ids).as_py() == len(ids)
        lake = EmbeddedLake.open(stream_settings)
        topic = _topic(stream_settings, spec)
        assert committed_offsets(lake.writer.table(spec))[topic] == _end_offsets(stream_settings, topic)
        lake.close()


def test_fresh_reads_join_the_kafka_tail(stream_settings: K2Settings) -> None:
    """/v1/trades/recent and include_live=true return the committed rows and the rows still in
    Kafka, once each, and say up to when the lake alone is complete."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = make_trade_rows(
        [
            trade_row("LIVE", now - timedelta(seconds=90 - i), "10.5", "7", sequence=i + 1, exchange="SYN")
            for i in range(80)
        ]
    )
    _produce(stream_settings, TRADES, _encode(stream_settings, TRADES, rows.slice(0, 50)), ["LIVE"] * 50)
    _run_sink(stream_settings, idle_s=3.0)
    _produce(stream_settings, TRADES, _encode(stream_settings, TRADES, rows.slice(50)), ["LIVE"] * 30)

    settings = stream_settings.model_copy(update={"api": ApiSettings(keys=SecretStr("t:key"))})
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        recent = client.get(
            "/v1/trades/recent", params={"symbol": "LIVE", "minutes": 10, "limit": 500}, headers=KEY
        )
        assert recent.status_code == 200, recent.text
        body = recent.json()
        assert body["meta"]["count"] == 80
        assert body["meta"]["live_rows"] == 30
        assert body["meta"]["lake_complete_until"] is not None
        assert [r["source_sequence"] for r in body["data"]] == list(range(80, 0, -1))

        window: dict[str, str | int] = {
            "symbol": "LIVE",
            "start_time": (now - timedelta(minutes=5)).isoformat(),
            "limit": 500,
        }
        lake_only = client.get("/v1/trades", params=window, headers=KEY).json()
        assert lake_only["meta"]["count"] == 50
        live = client.get("/v1/trades", params={**window, "include_live": "true"}, headers=KEY).json()
        assert [r["source_sequence"] for r in live["data"]] == list(range(1, 81))
        assert live["pagination"]["next_cursor"] is None

        paged = client.get("/v1/trades", params={**window, "limit": 10}, headers=KEY).json()
        refused = client.get(
            "/v1/trades",
            params={**window, "include_live": "true", "cursor": paged["pagination"]["next_cursor"]},
            headers=KEY,
        )
        assert refused.status_code == 400


def test_the_kafka_tail_answers_before_the_sinks_first_commit(stream_settings: K2Settings) -> None:
    """Trades and quotes produced, no sink run yet (the lake tables do not exist): include_live and
    the recent routes answer every row once from the tail; a plain lake read still says NO_DATA.
    After the sink's first commit the same requests return the same rows, once, from the lake.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    trades = make_trade_rows(
        [
            trade_row("TAIL", now - timedelta(seconds=60 - i), "9", "3", sequence=i + 1, exchange="SYN")
            for i in range(40)
        ]
    )
    quotes = make_quote_rows(
        [
            quote_row("TAIL", now - timedelta(seconds=60 - i), sequence=i + 1, exchange="SYN")
            for i in range(25)
        ]
    )
    _produce(stream_settings, TRADES, _encode(stream_settings, TRADES, trades), ["TAIL"] * 40)
    _produce(stream_settings, QUOTES, _encode(stream_settings, QUOTES, quotes), ["TAIL"] * 25)
    window: dict[str, str | int] = {
        "symbol": "TAIL",
        "start_time": (now - timedelta(minutes=5)).isoformat(),
        "limit": 500,
    }
    recent: dict[str, str | int] = {"symbol": "TAIL", "minutes": 10, "limit": 500}

    def answers(client: TestClient) -> dict[str, dict[str, Any]]:
        calls = {
            "trades": ("/v1/trades", {**window, "include_live": "true"}),
            "quotes": ("/v1/quotes", {**window, "include_live": "true"}),
            "recent trades": ("/v1/trades/recent", recent),
            "recent quotes": ("/v1/quotes/recent", recent),
        }
        bodies = {}
        for name, (path, params) in calls.items():
            response = client.get(path, params=params, headers=KEY)
            assert response.status_code == 200, f"{name}: {response.text}"
            bodies[name] = response.json()
        return bodies

    def ids(body: dict[str, Any]) -> list[str]:
        return sorted(str(row["message_id"]) for row in body["data"])

    settings = stream_settings.model_copy(update={"api": ApiSettings(keys=SecretStr("t:key"))})
    expected = {"trades": 40, "quotes": 25, "recent trades": 40, "recent quotes": 25}
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        plain = client.get("/v1/trades", params=window, headers=KEY)
        assert plain.status_code == 404
        assert plain.json()["error"]["code"] == "NO_DATA"
        before = answers(client)
        for name, body in before.items():
            assert body["meta"]["count"] == body["meta"]["live_rows"] == expected[name], name
            assert body["meta"]["lake_complete_until"] is None, name
            assert len(set(ids(body))) == expected[name], name

    _run_sink(stream_settings, idle_s=3.0)
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        after = answers(client)
    for name, body in after.items():
        assert ids(body) == ids(before[name]), name
        assert body["meta"]["live_rows"] == 0, name
        assert body["meta"]["lake_complete_until"] is not None, name
