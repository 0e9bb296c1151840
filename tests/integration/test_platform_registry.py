"""A real Apicurio Registry, installed from Maven Central and run by k2.platform.apicurio.

Confluent's own Python client talks to its Confluent-compatible API: it registers Avro schemas,
serializes and deserializes records in Confluent's wire format, and is refused an incompatible change.
The registry stores in a real PostgreSQL (k2.platform.postgres) when one is installed, else in H2.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from k2.errors import ConfigurationError
from k2.platform.apicurio import ApicurioRegistry, find_java
from k2.platform.postgres import Postgres
from k2.settings import K2Settings, KafkaSettings, PlatformSettings
from k2.testing.processes import free_ports


def _has_java() -> bool:
    try:
        find_java()
    except ConfigurationError:
        return False
    return True


pytestmark = [
    pytest.mark.kafka,
    # ServerProcess.start leaves the servers running detached; Popen warns when its handle is collected.
    pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning"),
    pytest.mark.skipif(not _has_java(), reason="Apicurio Registry needs Java 21+"),
]

SUBJECT = "k2.test.trades-value"
TRADE_V1: dict[str, Any] = {
    "type": "record",
    "name": "Trade",
    "namespace": "k2.test",
    "fields": [
        {"name": "symbol", "type": "string"},
        {"name": "price", "type": "double"},
        {"name": "quantity", "type": "long"},
    ],
}
#: Backward compatible: a new optional field with a default.
TRADE_V2: dict[str, Any] = {
    **TRADE_V1,
    "fields": [*TRADE_V1["fields"], {"name": "venue", "type": ["null", "string"], "default": None}],
}
#: Not backward compatible: a new required field without a default.
TRADE_V3: dict[str, Any] = {
    **TRADE_V2,
    "fields": [*TRADE_V2["fields"], {"name": "side", "type": "string"}],
}


def _avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


@pytest.fixture
def platform_data(tmp_path: Path) -> Iterator[Path]:
    """The platform's data dir: tmp_path, or when K2 runs as root a traversable temp dir.

    As root, PostgreSQL runs as ``postgres``, which cannot enter pytest's private (0700) tmp_path.
    """
    if os.geteuid() != 0:
        yield tmp_path / "platform"
        return
    data = Path(tempfile.mkdtemp(prefix="k2-test-registry-"))
    data.chmod(0o755)
    try:
        yield data
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path, platform_data: Path) -> K2Settings:
    """Settings with free ports and the platform's data in a temporary directory."""
    registry_port = free_ports(1)[0]
    return K2Settings(
        data_dir=tmp_path / "lake",
        kafka=KafkaSettings(schema_registry_url=f"http://127.0.0.1:{registry_port}/apis/ccompat/v7"),
        platform=PlatformSettings(
            data=platform_data, registry_port=registry_port, postgres_port=free_ports(1)[0]
        ),
    )


@pytest.fixture
def registry(settings: K2Settings) -> Iterator[ApicurioRegistry]:
    """A started registry on PostgreSQL (or H2 without it); registry and database always stopped."""
    postgres = Postgres(settings)
    service = ApicurioRegistry(settings, storage="postgresql" if postgres.installed() else "h2")
    if not service.installed() and shutil.which("mvn") is None:
        pytest.skip("Apicurio Registry is not installed and Maven is missing")
    try:
        if service.storage == "postgresql":
            postgres.start()
        service.install()
        assert service.installed()
        service.start()
        yield service
    finally:
        service.stop()
        postgres.stop()


def _client(settings: K2Settings) -> closing[SchemaRegistryClient]:
    return closing(SchemaRegistryClient({"url": settings.kafka.schema_registry_url}))


def test_registry_serves_confluent_clients_and_enforces_backward_compatibility(
    registry: ApicurioRegistry, settings: K2Settings
) -> None:
    health = registry.health()
    assert health.installed
    assert health.running
    assert health.healthy, health.detail
    assert registry.version in health.detail
    assert "compatibility BACKWARD" in health.detail
    assert health.endpoint == settings.kafka.schema_registry_url

    context = SerializationContext("k2.test.trades", MessageField.VALUE)
    trade = {"symbol": "BHP", "price": 45.12, "quantity": 300}
    with _client(settings) as client:
        assert client.get_compatibility() == "BACKWARD"

        v1_id = client.register_schema(SUBJECT, _avro(TRADE_V1))
        serializer = AvroSerializer(client, json.dumps(TRADE_V1), conf={"auto.register.schemas": False})
        payload = serializer(trade, context)
        assert payload is not None
        # Confluent wire format: magic byte 0, the schema id as a 4-byte big-endian int, then Avro.
        assert payload[0] == 0
        assert int.from_bytes(payload[1:5], "big") == v1_id
        assert AvroDeserializer(client)(payload, context) == trade

        assert client.test_compatibility(SUBJECT, _avro(TRADE_V2))
        v2_id = client.register_schema(SUBJECT, _avro(TRADE_V2))
        assert v2_id != v1_id
        assert client.get_versions(SUBJECT) == [1, 2]
        # A v2 reader reads what v1 wrote, filling in the new field's default.
        reader_v2 = AvroDeserializer(client, json.dumps(TRADE_V2))
        assert reader_v2(payload, context) == {**trade, "venue": None}

        assert not client.test_compatibility(SUBJECT, _avro(TRADE_V3))
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema(SUBJECT, _avro(TRADE_V3))
        assert refused.value.http_status_code == 409
        assert "incompatible" in refused.value.error_message.lower()
        assert client.get_versions(SUBJECT) == [1, 2]

    # Schemas survive a restart: they live in the registry's database, not in its memory.
    registry.stop()
    assert not registry.health().running
    registry.start()
    with _client(settings) as client:
        assert client.get_versions(SUBJECT) == [1, 2]
        assert client.get_latest_version(SUBJECT).schema_id == v2_id
        assert AvroDeserializer(client)(payload, context) == trade

    registry.stop()
    stopped = registry.health()
    assert not stopped.running
    assert not stopped.healthy
    assert stopped.installed
