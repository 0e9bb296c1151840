"""Kafka with three brokers (``K2_PLATFORM_KAFKA_BROKERS=3``): one node SIGKILLed while K2's
producer sends and the sink consumes, then started again.

The node killed is the leader of the trades topic's first partition (and maybe the active
controller: every node is a KRaft voter). Its partitions' leadership must move to the other two
brokers, the producer (idempotent, ``acks=all``, topics with 3 replicas and
``min.insync.replicas=2``) must finish without a failed delivery, and after the restart the node
must catch up until no partition is under-replicated. The lake then holds every produced row once,
and Kafka itself holds each message once (the producer's retries never duplicated one).

The sink is the one ``test_stream_faults`` supervises. The figures (seconds to failover and to
catch up) are logged (``--log-cli-level=INFO``), never asserted. The cluster runs on a platform of
the module's own, on free ports, removed afterwards.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pytest

from k2.errors import ConfigurationError
from k2.ingest.producer import MarketProducer
from k2.ingest.sources.base import SourceBatch
from k2.kafka.clients import admin_client
from k2.lake.tables import TRADES
from k2.platform.kafka import Kafka
from k2.settings import K2Settings
from k2.testing.platforms import on_free_ports
from tests.fixtures.private_platform import isolated, running, scratch_root
from tests.fixtures.supervised_sink import (
    SPECS,
    LakeAudit,
    SupervisedSink,
    assert_exactly_once,
    end_offsets,
    synthetic_rows,
    topic_of,
)

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

log = logging.getLogger(__name__)

BROKERS = 3
#: Rows the producer queues at a time, and the pause after each: the send spans the fault.
SEND_ROWS = 1_000
SEND_PAUSE_S = 0.25
#: Seconds the cluster may take to move leadership off the killed broker (it is fenced after
#: broker.session.timeout.ms, 9 s by default), and the restarted broker to catch up.
FAILOVER_TIMEOUT_S = 90.0
CATCH_UP_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def cluster_platform() -> Iterator[K2Settings]:
    """A platform of the module's own with three Kafka nodes, on free ports, removed after."""
    with scratch_root("brokers-") as root:
        yield from running(on_free_ports(root, brokers=BROKERS))


@pytest.fixture
def stream_settings(cluster_platform: K2Settings) -> K2Settings:
    """The three-broker platform with a catalog, topic prefix and consumer group of the test's own."""
    return isolated(cluster_platform)


class _Sender(threading.Thread):
    """K2's :class:`MarketProducer` sending ``rows`` a slice at a time: the first quarter at once,
    the rest, once :meth:`resume` is called, with a pause after each slice, so the send is under
    way when the test breaks a broker. Its failure is kept for the test thread.
    """

    def __init__(self, settings: K2Settings, rows: dict[str, pa.Table]) -> None:
        super().__init__(name="k2-producer", daemon=True)
        self._settings = settings
        self._slices = [
            (spec, rows[spec.name].slice(start, SEND_ROWS))
            for spec in SPECS
            for start in range(0, rows[spec.name].num_rows, SEND_ROWS)
        ]
        self.held = sum(rows.num_rows for _, rows in self._slices[: len(self._slices) // 4])
        self._resumed = threading.Event()
        self.acknowledged = 0
        self.error: BaseException | None = None

    def resume(self) -> None:
        """Send the rest of the rows."""
        self._resumed.set()

    def run(self) -> None:
        try:
            with MarketProducer(self._settings.kafka) as producer:
                for index, (spec, rows) in enumerate(self._slices):
                    if index == len(self._slices) // 4:
                        producer.flush()
                        self.acknowledged = producer.stats.messages
                        self._resumed.wait()
                    producer.produce_batch(SourceBatch(spec, rows, rows.num_rows, 0))
                    producer.poll(SEND_PAUSE_S)
                    self.acknowledged = producer.stats.messages
            self.acknowledged = producer.stats.messages
        except BaseException as error:  # handed to the test thread, which fails on it
            self.error = error


def _leaders(settings: K2Settings) -> dict[tuple[str, int], int]:
    """The leader of each partition of the test's topics (-1 while a partition has none)."""
    metadata = admin_client(settings.kafka, "k2-test-leaders").list_topics(timeout=10)
    topics = {topic_of(settings, spec) for spec in SPECS}
    return {
        (topic, partition.id): partition.leader
        for topic in topics
        if topic in metadata.topics
        for partition in metadata.topics[topic].partitions.values()
    }


def test_a_broker_killed_mid_stream_fails_over_and_catches_up(
    stream_settings: K2Settings, sink: SupervisedSink, audit: LakeAudit
) -> None:
    """SIGKILL the leader of a partition while the producer sends and the sink consumes: its
    partitions get other leaders, the producer delivers everything, the restarted broker catches
    up, and the lake and Kafka hold every message exactly once."""
    settings = stream_settings
    assert settings.kafka.replication_factor == BROKERS
    assert settings.kafka.min_insync_replicas == BROKERS - 1
    kafka = Kafka(settings)
    rows = synthetic_rows(date(2024, 3, 4), symbols=4, days=2, trades_per_day=3000)
    produced = {name: set(table["message_id"].to_pylist()) for name, table in rows.items()}
    total = sum(len(ids) for ids in produced.values())

    sender = _Sender(settings, rows)
    sender.start()
    sink.start()
    sink.run_until(lambda: sink.committed_rows() > 0, 90.0, "the sink's first commit")
    sender.resume()
    sink.run_until(lambda: sender.acknowledged > sender.held, 60.0, "the producer sending again")
    leaders = _leaders(settings)
    victim = leaders[(topic_of(settings, TRADES), 0)]
    led = sorted(key for key, leader in leaders.items() if leader == victim)
    was_controller = kafka.cluster().controller == victim
    acknowledged_at_kill = sender.acknowledged
    assert sender.is_alive(), "the producer finished before the fault; give it more rows"

    killed_at = time.monotonic()
    kafka.nodes[victim - 1].process.stop(timeout_s=15.0, sig=signal.SIGKILL)
    failover_s = sink.run_until(
        lambda: all(leader not in (victim, -1) for leader in _leaders(settings).values()),
        FAILOVER_TIMEOUT_S,
        f"the partitions led by broker {victim} getting new leaders",
    )
    sink.run_until(lambda: not sender.is_alive(), CATCH_UP_TIMEOUT_S, "the producer finishing")
    assert sender.error is None, repr(sender.error)
    send_done_s = time.monotonic() - killed_at
    down = kafka.cluster()
    assert not down.brokers[victim - 1].running

    restarting = time.monotonic()
    kafka.start()  # starts only the stopped node, and waits until it is in the cluster again
    restart_s = time.monotonic() - restarting
    caught_up_s = sink.run_until(
        lambda: kafka.cluster().under_replicated_partitions == 0,
        CATCH_UP_TIMEOUT_S,
        f"broker {victim} catching up",
    )
    try:
        sink_s = sink.run_until(audit.caught_up, CATCH_UP_TIMEOUT_S, "the sink catching up")
    except AssertionError as error:
        raise AssertionError(f"{audit.lag()}\n{error}") from None
    code = sink.stop()
    after = kafka.cluster()
    log.info(
        "broker %d (active controller: %s) SIGKILLed with %d of %d messages acknowledged; it led %d "
        "partition(s) %s; under-replicated while down: %s; new leaders for all after %.1f s; producer "
        "done %.1f s after the kill, %d acknowledged; broker back in the cluster %.1f s after its start, "
        "no partition under-replicated %.1f s later; sink caught up %.1f s later; sink exits %s; "
        "controller now %s",
        victim,
        was_controller,
        acknowledged_at_kill,
        total,
        len(led),
        led,
        down.under_replicated_partitions,
        failover_s,
        send_done_s,
        sender.acknowledged,
        restart_s,
        caught_up_s,
        sink_s,
        sink.exits,
        after.controller,
    )
    assert code == 0, sink.log_tail()
    assert all(b.running and b.in_cluster for b in after.brokers), after
    assert after.controller is not None
    assert sender.acknowledged == total
    for spec in SPECS:  # the idempotent producer's retries wrote no message twice
        assert sum(end_offsets(settings, topic_of(settings, spec)).values()) == len(produced[spec.name])
    assert_exactly_once(settings, audit, produced)


def test_another_broker_count_on_the_same_data_is_refused(cluster_platform: K2Settings) -> None:
    """A single-broker start on data formatted for three stops with an error naming both counts,
    and leaves the cluster running."""
    single = cluster_platform.platform.model_copy(update={"kafka_brokers": 1})
    with pytest.raises(ConfigurationError) as refused:
        Kafka(cluster_platform.model_copy(update={"platform": single})).start()
    assert f"cluster of {BROKERS} broker(s)" in str(refused.value)
    assert f"K2_PLATFORM_KAFKA_BROKERS={BROKERS}" in str(refused.value)
    assert Kafka(cluster_platform).health().healthy
