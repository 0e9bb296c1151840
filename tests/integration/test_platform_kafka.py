"""A real Kafka broker in KRaft mode, installed from Maven Central and run by k2.platform.kafka."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from k2.platform.kafka import Kafka
from k2.settings import K2Settings, PlatformSettings
from k2.testing.processes import free_ports

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.skipif(shutil.which("java") is None, reason="Kafka needs Java 17+"),
]


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[Kafka]:
    """A started broker on free ports with its data in tmp_path; always stopped afterwards."""
    settings = K2Settings(
        data_dir=tmp_path / "lake",
        platform=PlatformSettings(
            data=tmp_path / "platform", kafka_port=free_ports(1)[0], kafka_controller_port=free_ports(1)[0]
        ),
    )
    service = Kafka(settings)
    if not service.installed() and shutil.which("mvn") is None:
        pytest.skip("Kafka is not installed and Maven is missing")
    try:
        service.install()
        assert service.installed()
        service.start()
        yield service
    finally:
        service.stop()


def test_kafka_round_trip_and_health(kafka: Kafka) -> None:
    health = kafka.health()
    assert health.installed
    assert health.running
    assert health.healthy, health.detail
    assert kafka.version in health.detail
    assert health.endpoint == kafka.endpoint

    topic = "k2.test.trades"
    admin = AdminClient({"bootstrap.servers": kafka.endpoint})
    futures = admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    futures[topic].result(timeout=30)

    producer = Producer({"bootstrap.servers": kafka.endpoint, "enable.idempotence": True, "acks": "all"})
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    sent = {f"key-{i}": f"value-{i}" for i in range(100)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert errors == []

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.endpoint,
            "group.id": "k2-test",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: dict[str, str] = {}
    try:
        consumer.subscribe([topic])
        for _ in range(120):
            if len(received) == len(sent):
                break
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            raw_key, raw_value = message.key(), message.value()
            assert raw_key is not None
            assert raw_value is not None
            received[raw_key.decode()] = raw_value.decode()
    finally:
        consumer.close()
    assert received == sent

    kafka.stop()
    stopped = kafka.health()
    assert not stopped.running
    assert not stopped.healthy
    assert stopped.installed
