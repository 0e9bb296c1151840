"""The Kafka → Iceberg sink while its services fail under it: the broker or PostgreSQL (the Iceberg
catalog) stopped mid-stream, cleanly or with SIGKILL, and started again. Afterwards the lake holds
every produced message exactly once and its recorded offsets reach the end of every partition.

The sink runs as ``k2 stream run`` in a child process, supervised the way a service manager would
(systemd's ``Restart=on-failure``): when it exits with an error it is started again a moment later.
Whether it rode the outage out or was restarted is logged (``--log-cli-level=INFO`` shows it); either
way nothing may be lost or written twice, and it must never hang.

These tests restart services, so they run on a platform of their own (``private_platform``: its own
data directory and free ports) and never touch the shared one on the default ports.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of
from sqlalchemy.exc import SQLAlchemyError

from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.kafka.avro.codec import RecordCodec
from k2.kafka.topics import DataType, market_topic, value_subject
from k2.lake.catalog import close_catalog, open_catalog
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.platform.kafka import Kafka
from k2.platform.postgres import Postgres
from k2.platform.process import ServerProcess
from k2.settings import K2Settings
from k2.stream.checkpoint import Offsets, committed_offsets, recorded_offsets

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

log = logging.getLogger(__name__)

SPECS = (TRADES, QUOTES)
#: Seconds a supervisor waits before it starts a failed sink again (systemd's RestartSec).
RESTART_DELAY_S = 1.0
#: Seconds the sink may take to catch up once every service is back.
CATCH_UP_TIMEOUT_S = 90.0
#: Seconds a service stays down.
OUTAGE_S = 3.0

Stop = Literal["clean", "kill"]


# --- data in Kafka -------------------------------------------------------------------------------


def _topic(settings: K2Settings, spec: TableSpec) -> str:
    data_type = DataType.TRADES if spec is TRADES else DataType.QUOTES
    return market_topic("equities", data_type, "SYN", settings.kafka.topic_prefix)


def _synthetic_rows(start: date, symbols: int, days: int, trades_per_day: int) -> dict[str, pa.Table]:
    """Trades and quotes of a synthetic market; markets starting on other days share no message_id."""
    market = SyntheticMarket(symbols=symbols, days=days, trades_per_day=trades_per_day, start=start, seed=5)
    source = SyntheticSource(market, batch_rows=1_000_000, ingested_at=datetime.now(UTC))
    parts: dict[str, list[pa.Table]] = {}
    for batch in source.batches():
        parts.setdefault(batch.table.name, []).append(batch.rows)
    return {name: pa.concat_tables(tables) for name, tables in parts.items()}


class _Feed:
    """Produces rows to the test's topics, created (with schemas registered) on first use."""

    def __init__(self, settings: K2Settings) -> None:
        self._settings = settings
        self._schema_ids: dict[str, int] = {}
        self.produced: dict[str, set[str]] = {spec.name: set() for spec in SPECS}

    def _prepare(self) -> None:
        kafka = self._settings.kafka
        admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        topics = [
            NewTopic(_topic(self._settings, s), num_partitions=kafka.partitions, replication_factor=1)
            for s in SPECS
        ]
        for future in admin.create_topics(topics).values():
            future.result()
        with SchemaRegistryClient({"url": kafka.schema_registry_url}) as registry:
            for spec in SPECS:
                schema = Schema(orjson.dumps(RecordCodec(spec.record).schema).decode(), "AVRO")
                subject = value_subject(_topic(self._settings, spec))
                self._schema_ids[spec.name] = registry.register_schema(subject, schema)

    def produce(self, rows: dict[str, pa.Table]) -> None:
        """Produce every row (keyed by symbol) idempotently and wait until the broker has them all."""
        if not self._schema_ids:
            self._prepare()
        producer = Producer(
            {
                "bootstrap.servers": self._settings.kafka.bootstrap_servers,
                "enable.idempotence": True,
                "linger.ms": 20,
            }
        )
        for spec in SPECS:
            table = rows[spec.name]
            values = RecordCodec(spec.record).encode(table, self._schema_ids[spec.name])
            topic = _topic(self._settings, spec)
            for value, key in zip(values, table["symbol"].to_pylist(), strict=True):
                while True:
                    try:
                        producer.produce(topic, value=value, key=key.encode())
                        break
                    except BufferError:
                        producer.poll(0.1)
            self.produced[spec.name].update(table["message_id"].to_pylist())
        assert producer.flush(60) == 0

    def count(self) -> int:
        """Messages produced so far."""
        return sum(len(ids) for ids in self.produced.values())


def _end_offsets(settings: K2Settings, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "k2-test-ends"})
    try:
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
            for partition in range(settings.kafka.partitions)
        }
    finally:
        consumer.close()


# --- the sink, supervised ------------------------------------------------------------------------


class _SupervisedSink:
    """``k2 stream run`` (no ``--until-idle``: it runs like the service it is) restarted after a pause
    whenever it exits on its own; stopped with SIGTERM, which must commit and exit 0."""

    def __init__(self, settings: K2Settings, instance: str = "k2-sink-1") -> None:
        self._settings = settings
        self._instance = instance
        self.log_file = settings.data_dir / f"{instance}.log"
        self.exits: list[int] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._restart_at: float | None = None

    def _env(self) -> dict[str, str]:
        settings, platform = self._settings, self._settings.platform
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
            "K2_PROFILE": "platform",
            "K2_DATA_DIR": str(settings.data_dir),
            "K2_PLATFORM_DATA": str(settings.platform_data),
            "K2_PLATFORM_KAFKA_PORT": str(platform.kafka_port),
            "K2_PLATFORM_KAFKA_CONTROLLER_PORT": str(platform.kafka_controller_port),
            "K2_PLATFORM_REGISTRY_PORT": str(platform.registry_port),
            "K2_PLATFORM_POSTGRES_PORT": str(platform.postgres_port),
            "K2_PLATFORM_MINIO_PORT": str(platform.minio_port),
            "K2_PLATFORM_MINIO_CONSOLE_PORT": str(platform.minio_console_port),
            "K2_PLATFORM_PROMETHEUS_PORT": str(platform.prometheus_port),
            "K2_PLATFORM_ALERTMANAGER_PORT": str(platform.alertmanager_port),
            "K2_LAKE_CATALOG_NAME": settings.lake.catalog_name,
            "K2_LAKE_WAREHOUSE": settings.lake.warehouse or "",
            "K2_KAFKA_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "K2_KAFKA_PARTITIONS": str(settings.kafka.partitions),
            "K2_STREAM_GROUP_ID": settings.stream.group_id,
            "K2_STREAM_INSTANCE_ID": self._instance,
            "K2_STREAM_COMMIT_ROWS": "3000",
            "K2_STREAM_COMMIT_INTERVAL_S": "0.3",
            "K2_STREAM_POLL_MESSAGES": "1000",
            "K2_OBS_LOG_LEVEL": "INFO",
            "K2_OBS_LOG_FORMAT": "json",
        }

    def start(self) -> None:
        """Start the sink process."""
        with self.log_file.open("ab") as sink_log:  # the child keeps its own handle
            self._process = subprocess.Popen(
                [sys.executable, "-m", "k2.cli.main", "stream", "run"],
                env=self._env(),
                stdout=subprocess.DEVNULL,
                stderr=sink_log,
            )
        self._restart_at = None

    def watch(self) -> None:
        """Note an exit of the sink and start it again once the restart delay has passed."""
        assert self._process is not None
        if self._restart_at is None:
            code = self._process.poll()
            if code is None:
                return
            self.exits.append(code)
            log.info(
                "sink exited with %s; restarting it in %.0f s; the end of its log:\n%s",
                code,
                RESTART_DELAY_S,
                self.log_tail(4),
            )
            self._restart_at = time.monotonic() + RESTART_DELAY_S
        if time.monotonic() >= self._restart_at:
            self.start()

    def run_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Supervise the sink until ``done()``; return the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"{what}: not after {timeout_s:.0f} s\n{self.log_tail()}"
            self.watch()
            time.sleep(0.3)
        return time.monotonic() - started

    def supervise(self, seconds: float) -> None:
        """Supervise the sink for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.watch()
            time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM the sink (starting it first if it is down) and return its exit code."""
        self.watch()
        if self._restart_at is not None:
            assigned = len(self.events("sink_assigned"))
            self.start()
            self.run_until(  # it handles SIGTERM once it runs
                lambda: len(self.events("sink_assigned")) > assigned, 60.0, "the sink's restart"
            )
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the sink if it still runs (test teardown)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def events(self, name: str) -> list[dict[str, object]]:
        """The sink's log events called ``name``, from every run."""
        found: list[dict[str, object]] = []
        for line in self.log_file.read_bytes().splitlines():
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                found.append(event)
        return found

    def committed_rows(self) -> int:
        """Rows the sink's runs have committed to the lake so far, by their logs."""
        return sum(int(str(event.get("rows", 0))) for event in self.events("sink_commit"))

    def log_tail(self, lines: int = 40) -> str:
        """The end of the sink's log, for failure messages."""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def sink(stream_settings: K2Settings) -> Iterator[_SupervisedSink]:
    """A supervised sink on the test's topics and catalog, killed at teardown if it still runs."""
    supervised = _SupervisedSink(stream_settings)
    yield supervised
    supervised.kill()


# --- the lake ------------------------------------------------------------------------------------


class _Lake:
    """The test's catalog, read the way an auditor would, table by table."""

    def __init__(self, settings: K2Settings) -> None:
        self._settings = settings
        self._catalog: SqlCatalog | None = None

    def _table(self, spec: TableSpec) -> Table:
        if self._catalog is None:
            self._catalog = open_catalog(self._settings)
        return self._catalog.load_table((self._settings.lake.namespace, spec.name))

    def offsets(self, spec: TableSpec) -> Offsets:
        """Offsets the table recorded."""
        return committed_offsets(self._table(spec))

    def offsets_history(self, spec: TableSpec) -> list[Offsets]:
        """The offsets of every sink commit in the table's current history, oldest first."""
        table = self._table(spec)
        current = table.current_snapshot()
        history = list(ancestors_of(current, table.metadata)) if current else []
        return [o for snapshot in reversed(history) if (o := recorded_offsets(snapshot)) is not None]

    def message_ids(self, spec: TableSpec) -> pa.ChunkedArray:
        """Every ``message_id`` in the table."""
        return self._table(spec).scan(selected_fields=("message_id",)).to_arrow()["message_id"]

    def caught_up(self) -> bool:
        """Whether both tables recorded every partition's end offset (False while a service is down)."""
        try:
            return all(
                self.offsets(spec).get(topic := _topic(self._settings, spec))
                == _end_offsets(self._settings, topic)
                for spec in SPECS
            )
        except (NoSuchTableError, KafkaException):
            return False
        except SQLAlchemyError:  # PostgreSQL restarting: ask again with a fresh pool
            self.close()
            return False

    def close(self) -> None:
        """Release the catalog's connections."""
        if self._catalog is not None:
            close_catalog(self._catalog)
            self._catalog = None


@pytest.fixture
def lake(stream_settings: K2Settings) -> Iterator[_Lake]:
    """The test's lake, its connections released at teardown."""
    reader = _Lake(stream_settings)
    yield reader
    reader.close()


def _assert_exactly_once(settings: K2Settings, lake: _Lake, feed: _Feed) -> None:
    for spec in SPECS:
        ids = lake.message_ids(spec)
        assert len(ids) == len(feed.produced[spec.name]), f"{spec.name}: rows lost or duplicated"
        assert pc.count_distinct(ids).as_py() == len(ids), f"{spec.name}: duplicates"
        assert set(ids.to_pylist()) == feed.produced[spec.name]
        topic = _topic(settings, spec)
        assert lake.offsets(spec)[topic] == _end_offsets(settings, topic)


# --- the faults ----------------------------------------------------------------------------------


def _stop_service(settings: K2Settings, name: str, how: Stop) -> None:
    """Stop the service ``name`` the way ``how`` says: its own clean stop, or SIGKILL to its process group."""
    if how == "clean":
        service = Kafka(settings) if name == "kafka" else Postgres(settings)
        service.stop()
    else:
        ServerProcess(name, settings.platform_data / name).stop(timeout_s=15.0, sig=signal.SIGKILL)


def _outage(settings: K2Settings, sink: _SupervisedSink, lake: _Lake, *, service: str, how: Stop) -> None:
    """Produce, start the sink, take ``service`` down mid-stream and back, produce more, and check
    the lake once the sink caught up."""
    # Before the fault, enough that the sink (committing every 3000 rows) takes several seconds; after
    # it, rows of other days, so no message_id repeats.
    feed = _Feed(settings)
    first = _synthetic_rows(date(2024, 1, 8), symbols=4, days=2, trades_per_day=3000)
    second = _synthetic_rows(date(2024, 2, 5), symbols=2, days=1, trades_per_day=1500)
    feed.produce(first)
    total_first = feed.count()

    sink.start()
    sink.run_until(lambda: sink.committed_rows() > 0, 60.0, "the sink's first commit")
    committed = sink.committed_rows()
    assert committed < total_first, "the sink finished before the fault; give it more data"

    restart = Kafka(settings) if service == "kafka" else Postgres(settings)
    down_at = time.monotonic()
    try:
        _stop_service(settings, service, how)
        stopped_in = time.monotonic() - down_at
        sink.supervise(OUTAGE_S)
    finally:
        restart.start()  # also when the test fails, so the module's next test has its platform
    outage = time.monotonic() - down_at
    exits_in_outage = list(sink.exits)
    committed_in_outage = sink.committed_rows() - committed

    feed.produce(second)
    catch_up = sink.run_until(lake.caught_up, CATCH_UP_TIMEOUT_S, "the sink catching up")
    code = sink.stop()
    log.info(
        "%s %s stop: %d of %d rows committed before the fault, %d while it was down; stopped in "
        "%.1f s, down %.1f s; sink exits during the outage %s, in all %s; caught up %.1f s after; "
        "kafka errors logged %d; partition assignments %d",
        service,
        how,
        committed,
        total_first,
        committed_in_outage,
        stopped_in,
        outage,
        exits_in_outage,
        sink.exits,
        catch_up,
        len(sink.events("sink_kafka_error")),
        len(sink.events("sink_assigned")),
    )
    assert code == 0, sink.log_tail()
    _assert_exactly_once(settings, lake, feed)


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    stream_settings: K2Settings, sink: _SupervisedSink, lake: _Lake, how: Stop
) -> None:
    """Kafka stopped (SIGTERM, or SIGKILL to the broker) while the sink works through a backlog and
    started again: every message, before and after the outage, lands once."""
    _outage(stream_settings, sink, lake, service="kafka", how=how)


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_catalog_restart_mid_stream_loses_and_duplicates_nothing(
    stream_settings: K2Settings, sink: _SupervisedSink, lake: _Lake, how: Stop
) -> None:
    """PostgreSQL (the Iceberg catalog) stopped (fast shutdown, or SIGKILL to all its processes)
    while the sink commits, and started again: every message lands once."""
    _outage(stream_settings, sink, lake, service="postgres", how=how)


# --- several sinks in one group ------------------------------------------------------------------


def _assigned(sink: _SupervisedSink) -> set[tuple[str, int]]:
    """The partitions the sink's latest assignment gave it."""
    events = sink.events("sink_assigned")
    partitions = events[-1]["partitions"] if events else []
    assert isinstance(partitions, list)
    return {(str(topic), int(partition)) for topic, partition, _ in partitions}


def _assert_offsets_only_advance(lake: _Lake) -> None:
    """No sink commit recorded a partition behind, or forgot one, that an earlier commit recorded:
    what a commit built on a stale head would do to the other sinks' partitions.
    """
    for spec in SPECS:
        seen: dict[tuple[str, int], int] = {}
        for number, offsets in enumerate(lake.offsets_history(spec)):
            recorded = {(t, p): o for t, parts in offsets.items() for p, o in parts.items()}
            for key, offset in seen.items():
                assert recorded.get(key, -1) >= offset, f"{spec.name} commit {number}: {key} went back"
            seen = recorded


def test_two_sinks_in_one_group_share_partitions_and_one_killed_loses_nothing(
    stream_settings: K2Settings, lake: _Lake
) -> None:
    """Two sinks of one consumer group each take part of the partitions and commit to the same
    tables every 0.3 s; one is SIGKILLed just after one of its commits (often inside the next). The
    other takes its partitions over once the group times it out: every message lands once, and no
    commit ever recorded another sink's partitions behind where they were.
    """
    feed = _Feed(stream_settings)
    feed.produce(_synthetic_rows(date(2024, 3, 4), symbols=6, days=1, trades_per_day=50))
    first = _SupervisedSink(stream_settings, "k2-sink-a")
    second = _SupervisedSink(stream_settings, "k2-sink-b")
    partitions = {
        (_topic(stream_settings, s), p) for s in SPECS for p in range(stream_settings.kafka.partitions)
    }
    try:
        first.start()
        second.start()

        def shared() -> bool:
            second.watch()
            mine, theirs = _assigned(first), _assigned(second)
            return bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == partitions

        first.run_until(shared, 60.0, "both sinks holding partitions")
        feed.produce(_synthetic_rows(date(2024, 3, 11), symbols=6, days=2, trades_per_day=2500))
        commits = len(second.events("sink_commit"))
        second.run_until(lambda: len(second.events("sink_commit")) > commits + 2, 60.0, "sink b committing")
        time.sleep(random.uniform(0.0, 0.3))
        second.kill()
        killed_after = len(second.events("sink_commit"))

        feed.produce(_synthetic_rows(date(2024, 4, 1), symbols=3, days=1, trades_per_day=1500))
        took_over = first.run_until(
            lambda: _assigned(first) == partitions and lake.caught_up(),
            CATCH_UP_TIMEOUT_S,
            "sink a taking every partition over",
        )
        assert first.stop() == 0, first.log_tail()
    finally:
        first.kill()
        second.kill()
    conflicts = len(first.events("lake_append_conflict")) + len(second.events("lake_append_conflict"))
    log.info(
        "two sinks: b killed after %d commits (a made %d); %d commits rebuilt after losing a race; "
        "a caught up %.1f s after the kill; a's assignments %d",
        killed_after,
        len(first.events("sink_commit")),
        conflicts,
        took_over,
        len(first.events("sink_assigned")),
    )
    _assert_exactly_once(stream_settings, lake, feed)
    _assert_offsets_only_advance(lake)
