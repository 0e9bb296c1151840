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
import random
import signal
import time
from datetime import date
from typing import Literal

import pytest

from k2.platform.kafka import Kafka
from k2.platform.postgres import Postgres
from k2.platform.process import ServerProcess
from k2.settings import K2Settings
from tests.fixtures.supervised_sink import (
    SPECS,
    Feed,
    LakeAudit,
    SupervisedSink,
    assert_exactly_once,
    synthetic_rows,
    topic_of,
)

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

log = logging.getLogger(__name__)

#: Seconds the sink may take to catch up once every service is back.
CATCH_UP_TIMEOUT_S = 90.0
#: Seconds a service stays down.
OUTAGE_S = 3.0

Stop = Literal["clean", "kill"]


# --- the faults ----------------------------------------------------------------------------------


def _stop_service(settings: K2Settings, name: str, how: Stop) -> None:
    """Stop the service ``name`` the way ``how`` says: its own clean stop, or SIGKILL to its process group."""
    if how == "clean":
        service = Kafka(settings) if name == "kafka" else Postgres(settings)
        service.stop()
    else:
        ServerProcess(name, settings.platform_data / name).stop(timeout_s=15.0, sig=signal.SIGKILL)


def _outage(settings: K2Settings, sink: SupervisedSink, audit: LakeAudit, *, service: str, how: Stop) -> None:
    """Produce, start the sink, take ``service`` down mid-stream and back, produce more, and check
    the lake once the sink caught up."""
    # Before the fault, enough that the sink (committing every 3000 rows) takes several seconds; after
    # it, rows of other days, so no message_id repeats.
    feed = Feed(settings)
    first = synthetic_rows(date(2024, 1, 8), symbols=4, days=2, trades_per_day=3000)
    second = synthetic_rows(date(2024, 2, 5), symbols=2, days=1, trades_per_day=1500)
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
    catch_up = sink.run_until(audit.caught_up, CATCH_UP_TIMEOUT_S, "the sink catching up")
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
    assert_exactly_once(settings, audit, feed.produced)


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    stream_settings: K2Settings, sink: SupervisedSink, audit: LakeAudit, how: Stop
) -> None:
    """Kafka stopped (SIGTERM, or SIGKILL to the broker) while the sink works through a backlog and
    started again: every message, before and after the outage, lands once."""
    _outage(stream_settings, sink, audit, service="kafka", how=how)


@pytest.mark.parametrize("how", ["clean", "kill"])
def test_catalog_restart_mid_stream_loses_and_duplicates_nothing(
    stream_settings: K2Settings, sink: SupervisedSink, audit: LakeAudit, how: Stop
) -> None:
    """PostgreSQL (the Iceberg catalog) stopped (fast shutdown, or SIGKILL to all its processes)
    while the sink commits, and started again: every message lands once."""
    _outage(stream_settings, sink, audit, service="postgres", how=how)


# --- several sinks in one group ------------------------------------------------------------------


def _assigned(sink: SupervisedSink) -> set[tuple[str, int]]:
    """The partitions the sink's latest assignment gave it."""
    events = sink.events("sink_assigned")
    partitions = events[-1]["partitions"] if events else []
    assert isinstance(partitions, list)
    return {(str(topic), int(partition)) for topic, partition, _ in partitions}


def _assert_offsets_only_advance(audit: LakeAudit) -> None:
    """No sink commit recorded a partition behind, or forgot one, that an earlier commit recorded:
    what a commit built on a stale head would do to the other sinks' partitions.
    """
    for spec in SPECS:
        seen: dict[tuple[str, int], int] = {}
        for number, offsets in enumerate(audit.offsets_history(spec)):
            recorded = {(t, p): o for t, parts in offsets.items() for p, o in parts.items()}
            for key, offset in seen.items():
                assert recorded.get(key, -1) >= offset, f"{spec.name} commit {number}: {key} went back"
            seen = recorded


def test_two_sinks_in_one_group_share_partitions_and_one_killed_loses_nothing(
    stream_settings: K2Settings, audit: LakeAudit
) -> None:
    """Two sinks of one consumer group each take part of the partitions and commit to the same
    tables every 0.3 s; one is SIGKILLed just after one of its commits (often inside the next). The
    other takes its partitions over once the group times it out: every message lands once, and no
    commit ever recorded another sink's partitions behind where they were.
    """
    feed = Feed(stream_settings)
    feed.produce(synthetic_rows(date(2024, 3, 4), symbols=6, days=1, trades_per_day=50))
    first = SupervisedSink(stream_settings, "k2-sink-a")
    second = SupervisedSink(stream_settings, "k2-sink-b")
    count = stream_settings.kafka.partitions
    partitions = {(topic_of(stream_settings, spec), p) for spec in SPECS for p in range(count)}
    try:
        first.start()
        second.start()

        def shared() -> bool:
            second.watch()
            mine, theirs = _assigned(first), _assigned(second)
            return bool(mine) and bool(theirs) and not mine & theirs and mine | theirs == partitions

        first.run_until(shared, 60.0, "both sinks holding partitions")
        feed.produce(synthetic_rows(date(2024, 3, 11), symbols=6, days=2, trades_per_day=2500))
        commits = len(second.events("sink_commit"))
        second.run_until(lambda: len(second.events("sink_commit")) > commits + 2, 60.0, "sink b committing")
        time.sleep(random.uniform(0.0, 0.3))
        second.kill()
        killed_after = len(second.events("sink_commit"))

        feed.produce(synthetic_rows(date(2024, 4, 1), symbols=3, days=1, trades_per_day=1500))
        took_over = first.run_until(
            lambda: _assigned(first) == partitions and audit.caught_up(),
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
    assert_exactly_once(stream_settings, audit, feed.produced)
    _assert_offsets_only_advance(audit)
