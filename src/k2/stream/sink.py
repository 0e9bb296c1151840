"""The sink: consume market data topics in batches and commit them to Iceberg, exactly once.

Per table, consumed rows wait in memory until ``commit_rows`` rows or ``commit_interval_s``
seconds; then one Iceberg snapshot holds the new rows *and* the next Kafka offset of every
partition they came from. Whatever instant the sink dies at, the lake holds either the rows and
their offsets or neither, and a restarted sink reads from the offsets in the lake. Rows already
in the lake (a redelivery) are skipped on ``message_id``. Undecodable messages go to the
source's dead-letter topic, which is flushed before the offsets that pass them are committed.

Commits go through the circuit breakers of the catalog and the object store
(:mod:`k2.resilience.breakers`). When a commit finds the lake down, or a breaker open, consumption
pauses (``k2_sink_paused{reason}``: ``lake_outage`` while the breaker still counts failures,
``breaker_open`` once it opened) and the pending rows wait in memory; the next attempt is after a
backoff, or, with the breaker open, when it lets its half-open probe through, and that attempt
is the probe. When the lake answers again the rows are committed and consumption resumes, without
a restart. Kafka's own outages are librdkafka's to ride out (it reconnects); the sink notices them
through the client's error callback and probes the cluster through Kafka's breaker until it
answers, so ``k2_circuit_breaker_state{dependency="kafka"}`` shows them.

A message written with a later, compatible writer schema that adds optional fields grows the
table: the first time the sink meets that schema it adds the fields as optional columns (rows
written before read them as null) and then writes their values. A writer schema that would need
a column dropped or retyped is refused, and its messages are dead letters.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from functools import partial

import pyarrow as pa
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from k2.kafka.avro.codec import RecordCodec
from k2.kafka.clients import admin_client, client_config
from k2.kafka.correlation import correlation_ids
from k2.kafka.dead_letters import DeadLetterWriter, Origin
from k2.kafka.errors import KafkaUnavailableError
from k2.kafka.lag import consumer_lags
from k2.kafka.schema_registry import WriterSchemas
from k2.kafka.topics import DataType, dlq_topic, market_topic_pattern, parse_market_topic
from k2.lake.errors import LakeCommitConflictError, LakeUnavailableError
from k2.lake.evolution import SchemaEvolutionError, add_optional_columns
from k2.lake.maintenance import compact
from k2.lake.outages import lake_call
from k2.lake.rollup import Refresher
from k2.lake.tables import QUOTES, TRADES, TableSpec, table_spec
from k2.lake.writer import LakeWriter
from k2.obs.metrics import K2Metrics
from k2.resilience.breakers import Breakers, Dependency
from k2.resilience.errors import BreakerOpenError
from k2.schemas.record import Column
from k2.settings import K2Settings
from k2.stream.checkpoint import Offsets, committed_offsets, sink_summary
from k2.stream.errors import LakeOutageError, SinkError
from k2.stream.sequences import SequenceTracker

log = structlog.get_logger(__name__)

#: The dead-letter reason of a message the sink could not decode.
UNDECODABLE = "undecodable"
#: How often librdkafka reports statistics (the consumer lag metric's refresh).
STATISTICS_INTERVAL_MS = 5000
#: A commit's log line names at most this many of the batches' correlation ids.
MAX_LOGGED_IDS = 20
#: librdkafka's errors that say the cluster cannot be reached.
_KAFKA_DOWN = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
#: Seconds the sink waits for Kafka's metadata when it probes a cluster it found down.
KAFKA_PROBE_S = 1.0
#: Seconds the consumer may keep failing its probes while a new client reaches the cluster, before
#: the sink replaces it: after a broker restart a consumer can stay cut off from a cluster that is
#: back (it then never rejoins its group).
STUCK_CONSUMER_S = 30.0


@dataclass
class _Pending:
    """Rows of one table consumed since its last commit, and the offsets they take the table to."""

    batches: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    offsets: Offsets = field(default_factory=dict)
    since: float = 0.0
    correlation_ids: set[str] = field(default_factory=set)

    def add(self, topic: str, messages: list[Message]) -> None:
        """Advance the offsets past ``messages`` (one topic's, in partition order) and note their
        correlation ids.
        """
        self.correlation_ids |= correlation_ids(messages)
        last = {m.partition() or 0: m.offset() or 0 for m in messages}  # the last of each partition
        parts = self.offsets.setdefault(topic, {})
        for partition, offset in last.items():
            parts[partition] = max(offset + 1, parts.get(partition, 0))
        if not self.since:
            self.since = time.monotonic()


@dataclass
class SinkReport:
    """What one run of the sink did."""

    messages: int = 0
    rows_written: int = 0
    duplicates_skipped: int = 0
    dead_letters: int = 0
    commits: int = 0


@dataclass
class _Outage:
    """When the lake became unreachable, and when to try committing again."""

    since: float
    retry_at: float
    reason: str
    attempts: int = 0


class _FencedError(SinkError):
    """The group fenced this static member; the sink joins again with a new consumer."""


class Sink:
    """Consumes every market data topic (under the configured prefix) into the lake."""

    def __init__(
        self, settings: K2Settings, writer: LakeWriter, metrics: K2Metrics, breakers: Breakers | None = None
    ) -> None:
        """Args:
        settings: K2's settings.
        writer: writes the lake.
        metrics: where the sink's metrics go.
        breakers: the process's circuit breakers; None: the sink's own, exported to ``metrics``.
        """
        kafka = settings.kafka
        self._settings = settings.stream
        self._prefix = kafka.topic_prefix
        self._writer = writer
        self._metrics = metrics
        self._consumer_config = client_config(
            kafka,
            "k2-sink",
            {
                "group.id": self._settings.group_id,
                # Static membership: a sink restarted after a crash takes its old place at once
                # instead of waiting for the group to time the dead member out.
                "group.instance.id": self._settings.instance_id,
                "session.timeout.ms": 15_000,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "topic.metadata.refresh.interval.ms": 5000,
                # librdkafka's statistics carry each partition's consumer lag.
                "statistics.interval.ms": STATISTICS_INTERVAL_MS,
                "stats_cb": self._on_statistics,
            },
        )
        self._breakers = breakers or Breakers(settings.resilience, metrics)
        self._kafka = kafka
        self._kafka_suspect_since: float | None = None
        self._consumer = self._subscribed()
        self._dead_letters = DeadLetterWriter(kafka, "k2-sink-dlq")
        self._writer_schemas = WriterSchemas(kafka)
        self._codecs: dict[str, RecordCodec] = {}
        self._pending: dict[str, _Pending] = {}
        self._assigned_at = 0.0
        self._outage: _Outage | None = None
        self._dead_letter_topics: set[str] = set()
        self._sequences = SequenceTracker(metrics)
        self._rollup = Refresher(writer)
        self.report = SinkReport()

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None) -> SinkReport:
        """Consume until ``stop`` is set (or nothing arrived for ``idle_exit_s``), then commit and close.

        Raises:
            SinkError: on a Kafka error the sink cannot pass.
        """
        stop = stop or threading.Event()
        last_message = 0.0
        try:
            while not stop.is_set():
                try:
                    messages = self._consumer.consume(self._settings.poll_messages, timeout=0.5)
                    self._metrics.sink_batch_messages.observe(len(messages))
                    if messages:
                        last_message = time.monotonic()
                        self._take(messages)
                except KafkaException as exc:
                    if not _fenced(exc.args[0]):
                        raise SinkError(f"Kafka: {exc}") from exc
                    self._rejoin("fenced")
                    continue
                except _FencedError:
                    self._rejoin("fenced")
                    continue
                self._commit_due(force=False)
                if self._kafka_suspect_since is not None:
                    self._probe_kafka()
                quiet_since = max(last_message, self._assigned_at)
                if idle_exit_s is not None and quiet_since and time.monotonic() - quiet_since >= idle_exit_s:
                    break
            self._commit_due(force=True)
        finally:
            self._consumer.close()
            self._writer_schemas.close()
            self._rollup.close()
        return self.report

    def _on_statistics(self, statistics: str) -> None:
        """Export the consumer lag from librdkafka's periodic statistics (served during ``consume``)."""
        for (topic, partition), lag in consumer_lags(statistics).items():
            self._metrics.consumer_lag.labels(topic, str(partition)).set(lag)

    def _subscribed(self) -> Consumer:
        consumer = Consumer({**self._consumer_config, "error_cb": self._on_client_error})
        consumer.subscribe(
            [market_topic_pattern(self._prefix)], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        return consumer

    def _on_client_error(self, error: KafkaError) -> None:
        """Librdkafka's client-level errors: it reconnects by itself; a lost cluster makes the
        sink probe it through Kafka's breaker.
        """
        log.warning("sink_kafka_client_error", error=error.str(), fatal=error.fatal())
        if error.code() in _KAFKA_DOWN and self._kafka_suspect_since is None:
            self._kafka_suspect_since = time.monotonic()

    def _probe_kafka(self) -> None:
        """Ask the cluster for its metadata through Kafka's breaker (refused at once while it is
        open): a failure counts against the breaker, an answer closes it and ends the suspicion.
        A consumer that stays cut off from a cluster a new client reaches is replaced.
        """
        try:
            with self._breakers.guard(Dependency.KAFKA):
                try:
                    self._consumer.list_topics(timeout=KAFKA_PROBE_S)
                except KafkaException as error:
                    raise KafkaUnavailableError(f"Kafka: {error}", Dependency.KAFKA) from error
        except (BreakerOpenError, KafkaUnavailableError):
            since = self._kafka_suspect_since
            if since is not None and time.monotonic() - since >= STUCK_CONSUMER_S and self._cluster_answers():
                self._kafka_suspect_since = time.monotonic()
                self._rejoin("cut_off")
            return
        self._kafka_suspect_since = None

    def _cluster_answers(self) -> bool:
        """Whether a new client gets the cluster's metadata."""
        try:
            admin_client(self._kafka, "k2-sink-probe").list_topics(timeout=KAFKA_PROBE_S)
        except KafkaException:
            return False
        return True

    def _rejoin(self, why: str) -> None:
        """After the group fenced this member (``fenced``: a broker restart can), or its consumer
        stayed cut off from a cluster that is back (``cut_off``), commit what was consumed, which
        the lake's offsets make safe, and join again with a fresh consumer.
        """
        log.warning("sink_rejoining", why=why)
        self._commit_due(force=True)
        with contextlib.suppress(KafkaException):
            self._consumer.close()
        self._consumer = self._subscribed()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each assigned partition at the offset its table recorded, not the group's."""
        recorded: dict[str, Offsets] = {}
        for partition in partitions:
            spec = self._table_of(partition.topic)
            if spec.name not in recorded:
                recorded[spec.name] = committed_offsets(self._writer.table(spec))
            partition.offset = (
                recorded[spec.name].get(partition.topic, {}).get(partition.partition, OFFSET_BEGINNING)
            )
        log.info("sink_assigned", partitions=[(p.topic, p.partition, p.offset) for p in partitions])
        self._metrics.sink_rebalances.labels("assign").inc()
        consumer.assign(partitions)
        self._assigned_at = time.monotonic()

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit what was consumed before partitions move to another sink, so it never writes them too."""
        log.info("sink_revoked", partitions=[(p.topic, p.partition) for p in partitions])
        self._metrics.sink_rebalances.labels("revoke").inc()
        for partition in partitions:
            self._metrics.consumer_lag.remove(partition.topic, str(partition.partition))
        try:
            self._commit_due(force=True)
        except LakeOutageError:
            # The new owner reads these rows again from the offsets in the lake.
            log.warning("sink_revoked_uncommitted", tables=sorted(self._pending))
            self._pending.clear()

    def _take(self, messages: list[Message]) -> None:
        by_topic: dict[str, list[Message]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() in {KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART}:
                    continue
                if _fenced(error):
                    raise _FencedError(str(error))
                if error.fatal() or not error.retriable():
                    raise SinkError(f"Kafka: {error}")
                log.warning("sink_kafka_error", error=str(error))
                continue
            by_topic.setdefault(message.topic() or "", []).append(message)
        for topic, batch in by_topic.items():
            spec = self._table_of(topic)
            pending = self._pending.setdefault(spec.name, _Pending())
            decoded = self._codec(spec).decode([m.value() for m in batch], self._writer_schemas)
            rows, failures = decoded.rows, decoded.errors
            for index, reason in failures:
                message = batch[index]
                self._dead_letters.send(
                    self._dead_letter_topic(topic),
                    message.value(),
                    message.key(),
                    reason=UNDECODABLE,
                    error=reason,
                    origin=Origin.of(message, "sink"),
                )
            pending.add(topic, batch)
            if rows.num_rows:
                pending.batches.append(rows)
                pending.rows += rows.num_rows
                self._sequences.observe(spec, rows)
            self.report.messages += len(batch)
            self.report.dead_letters += len(failures)
            self._metrics.sink_messages.labels(spec.name).inc(len(batch))
            self._metrics.dead_letters.labels(self._dead_letter_topic(topic), "sink").inc(len(failures))
            self._metrics.sink_pending_rows.labels(spec.name).set(pending.rows)

    def _codec(self, spec: TableSpec) -> RecordCodec:
        codec = self._codecs.get(spec.name)
        if codec is None:
            codec = self._codecs[spec.name] = RecordCodec(spec.record, partial(self._add_columns, spec))
        return codec

    def _add_columns(self, spec: TableSpec, columns: tuple[Column, ...]) -> str | None:
        """Evolve ``spec``'s table to hold the optional columns a new writer schema adds, before any
        of its rows is taken; or say why it cannot (its messages are then dead letters).
        """
        try:
            add_optional_columns(self._writer.table(spec), columns)
        except SchemaEvolutionError as error:
            return str(error)
        return None

    def _table_of(self, topic: str) -> TableSpec:
        _, data_type, _ = parse_market_topic(topic, self._prefix)
        return TRADES if data_type is DataType.TRADES else QUOTES

    def _dead_letter_topic(self, topic: str) -> str:
        _, _, exchange = parse_market_topic(topic, self._prefix)
        dead = dlq_topic(exchange, self._prefix)
        if dead not in self._dead_letter_topics:
            self._dead_letter_topics.add(dead)
            self._metrics.dead_letters.labels(dead, "sink")  # zero until the first
            self._sequences.expect(exchange)
        return dead

    def _commit_due(self, *, force: bool) -> None:
        """Commit the tables whose rows are due. While the lake is unreachable, consumption is
        paused (memory stays bounded) and the commit retried with backoff, or when the open
        breaker lets its probe through, up to ``K2_STREAM_LAKE_OUTAGE_S`` (forever when unset);
        then the sink stops, losing nothing.
        """
        now = time.monotonic()
        if self._outage is not None and now < self._outage.retry_at and not force:
            return
        for name, pending in list(self._pending.items()):
            if not pending.offsets:
                continue
            if (
                force
                or self._outage is not None
                or pending.rows >= self._settings.commit_rows
                or now - pending.since >= self._settings.commit_interval_s
            ):
                try:
                    self._commit(table_spec(name), pending)
                except LakeOutageError as error:
                    if force:
                        raise
                    self._wait_for_lake(error, now)
                    return
                del self._pending[name]
        if self._outage is not None:
            log.info("sink_lake_back", outage_s=round(now - self._outage.since, 1))
            self._consumer.resume(self._consumer.assignment())
            self._metrics.sink_paused.labels(self._outage.reason).set(0)
            self._outage = None

    def _wait_for_lake(self, error: LakeOutageError, now: float) -> None:
        """Pause consumption and schedule the next commit attempt (the open breaker's probe time,
        or a backoff while it counts failures); give up after the outage limit, if one is set.
        """
        cause = error.__cause__
        reason = "breaker_open" if isinstance(cause, BreakerOpenError) else "lake_outage"
        if self._outage is None:
            log.warning("sink_lake_unreachable_pausing", error=str(error), reason=reason)
            self._consumer.pause(self._consumer.assignment())
            self._metrics.sink_outages.inc()
            self._outage = _Outage(since=now, retry_at=now, reason=reason)
        if reason != self._outage.reason:
            self._metrics.sink_paused.labels(self._outage.reason).set(0)
            self._outage.reason = reason
        self._metrics.sink_paused.labels(reason).set(1)
        limit = self._settings.lake_outage_s
        if limit is not None and now - self._outage.since > limit:
            raise error
        self._outage.attempts += 1
        if isinstance(cause, BreakerOpenError):
            self._outage.retry_at = now + cause.retry_after_s
        else:
            self._outage.retry_at = now + min(2.0**self._outage.attempts / 4, 15.0)

    def _commit(self, spec: TableSpec, pending: _Pending) -> None:
        """Commit ``pending``, or raise :class:`LakeOutageError` when the lake cannot be reached.

        Nothing is lost by failing: the offsets in the lake still point before ``pending``.
        """
        try:
            with lake_call(self._breakers, f"commit to {spec.name}"):
                self._commit_once(spec, pending)
        except (LakeUnavailableError, BreakerOpenError) as error:
            raise LakeOutageError(f"sink stopped, nothing lost: {error}") from error
        except LakeCommitConflictError as error:  # other sinks of the group kept winning: try later
            raise LakeOutageError(f"commit deferred, nothing lost: {error}") from error

    def _commit_once(self, spec: TableSpec, pending: _Pending) -> None:
        """Commit ``pending``'s rows and offsets in one snapshot, then tell the group (for lag only)."""
        self._dead_letters.flush()
        rows = (
            # Batches decoded before a writer schema added a column lack it: null there.
            pa.concat_tables(pending.batches, promote_options="default")
            if pending.batches
            else spec.record.arrow_schema().empty_table()
        )
        started = time.perf_counter()
        result = self._writer.append(
            spec, rows, partial(sink_summary, pending.offsets), commit_when_empty=True
        )
        self._metrics.sink_commit_duration.labels(spec.name).observe(time.perf_counter() - started)
        self._metrics.sink_commits.labels(spec.name).inc()
        self._metrics.sink_last_commit.labels(spec.name).set_to_current_time()
        self._metrics.sink_duplicates.labels(spec.name).inc(result.duplicates_skipped)
        self._metrics.sink_pending_rows.labels(spec.name).set(0)
        self.report.commits += 1
        self.report.rows_written += result.rows_written
        self.report.duplicates_skipped += result.duplicates_skipped
        log.info(
            "sink_commit",
            table=spec.name,
            rows=result.rows_written,
            duplicates=result.duplicates_skipped,
            snapshot_id=result.snapshot_id,
            correlation_ids=sorted(pending.correlation_ids)[:MAX_LOGGED_IDS],
            batches=len(pending.correlation_ids),
        )
        if spec is TRADES and result.rows_written:
            self._rollup.request()
        if self._settings.compact_min_files is not None and result.snapshot_id is not None:
            self._compact(spec, self._settings.compact_min_files)
        group_offsets = [
            TopicPartition(topic, partition, offset)
            for topic, parts in pending.offsets.items()
            for partition, offset in parts.items()
        ]
        try:
            self._consumer.commit(offsets=group_offsets, asynchronous=True)
        except KafkaException as error:  # the lake holds the offsets; the group's only show lag
            log.warning("sink_group_commit_failed", error=str(error))

    def _compact(self, spec: TableSpec, min_files: int) -> None:
        """Compact ``spec``'s partitions of ``min_files`` files or more; when another writer
        (another sink of the group) commits meanwhile, leave it to a later commit.
        """
        try:
            compacted = compact(self._writer.table(spec), spec, min_files=min_files)
        except LakeCommitConflictError as error:
            log.info("sink_compaction_deferred", table=spec.name, reason=str(error))
            return
        if compacted.snapshot_id is not None:
            log.info("sink_compacted", table=spec.name, files_before=compacted.files_before)
            self._metrics.iceberg_compactions.labels(spec.name).inc()
            self._metrics.iceberg_compaction_files.labels(spec.name).inc(compacted.files_before)


def _fenced(error: KafkaError) -> bool:
    """Whether the group fenced this static member (after a broker restart, say)."""
    return error.code() == KafkaError.FENCED_INSTANCE_ID or "fenced" in error.str().lower()
