"""deploy/kubernetes agrees with K2: the variables it sets are K2's settings and K2 accepts their
values, its containers run real `k2` commands, its ports, probes and scrape annotations are where
K2 serves, its topics are those K2 writes, and every endpoint K2 and Trino are given is a Service
these manifests (or their operators) create.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ByteSize, TypeAdapter
from pydantic_settings import BaseSettings
from typer.core import TyperGroup
from typer.main import get_command

from k2.cli.main import app as cli
from k2.domain import AssetClass
from k2.kafka import dead_letters
from k2.kafka.topics import DataType, dlq_topic, market_topic
from k2.settings import K2Settings
from tests.unit.deploy._manifests import (
    container_environment,
    documents,
    find,
    k2_containers,
    pod_annotations,
    pod_spec,
)

#: The venues whose topics the manifests declare: the ASX loader's and the Binance feed's.
VENUES = {"asx": AssetClass.EQUITIES, "binance": AssetClass.CRYPTO}
_BYTES = TypeAdapter(ByteSize)


def _setting_names() -> set[str]:
    """Every environment variable K2's settings read."""
    names = set()
    for name, field in K2Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseSettings):
            prefix = str(model.model_config.get("env_prefix", ""))
            names |= {f"{prefix}{sub}".upper() for sub in model.model_fields}
        else:
            names.add(f"K2_{name}".upper())
    return names


def _k2_params() -> list[Any]:
    return [pytest.param(w, c, id=f"{w['kind']}/{w['metadata']['name']}") for w, c in k2_containers()]


def _environment(name: str) -> dict[str, str]:
    """The environment of the K2 container of the workload ``name``."""
    (container,) = [c for w, c in k2_containers() if w["metadata"]["name"] == name]
    return container_environment(container)


def _settings(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> K2Settings:
    """K2's settings as a process started with exactly ``environment`` reads them."""
    for name in [n for n in os.environ if n.startswith("K2_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return K2Settings()


def _memory_limit(container: dict[str, Any]) -> int:
    """The container's memory limit in bytes; Kubernetes writes binary units without the B (4Gi)."""
    quantity = str(container["resources"]["limits"]["memory"])
    return int(_BYTES.validate_python(f"{quantity}B" if quantity.endswith("i") else quantity))


def _k2_settings_data() -> dict[str, str]:
    data: dict[str, str] = find("ConfigMap", "k2-settings")["data"]
    return data


def test_every_k2_variable_the_manifests_set_is_a_k2_setting() -> None:
    """A misspelt or removed K2_* name would be ignored silently by K2: none is set."""
    known = _setting_names()
    set_names = set(_k2_settings_data())
    for _, container in k2_containers():
        set_names |= {variable["name"] for variable in container.get("env", [])}
    assert {name for name in set_names if name.startswith("K2_")} - known == set()


@pytest.mark.parametrize(("workload", "container"), _k2_params())
def test_k2_accepts_each_containers_environment(
    workload: dict[str, Any], container: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every value parses (sizes, lists, none), the API keys are name:key pairs, and the lake
    settings K2 runs with are the manifests' (a PostgreSQL catalog, the S3 warehouse).
    """
    environment = container_environment(container)
    settings = _settings(environment, monkeypatch)
    assert settings.api.key_names() or "K2_API_KEYS" not in environment
    if "K2_LAKE_CATALOG_URI" in environment:
        assert settings.catalog_uri.startswith("postgresql+psycopg://")
        assert settings.warehouse == environment["K2_LAKE_WAREHOUSE"]
    assert settings.kafka_configured


@pytest.mark.parametrize(("workload", "container"), _k2_params())
def test_k2_containers_run_real_commands(workload: dict[str, Any], container: dict[str, Any]) -> None:
    """Each container's arguments name a `k2` command, with options that command accepts."""
    command = get_command(cli)
    arguments = list(container["args"])
    while isinstance(command, TyperGroup):
        command = command.commands[arguments.pop(0)]
    command.make_context(command.name, arguments)  # raises on an unknown option or a bad value


def test_the_api_listens_where_its_service_probes_and_scrapes_point() -> None:
    """`k2 serve` binds every interface on K2_API_PORT: the container port, the Service's target,
    the probes and the Prometheus annotation all name it, and the probes are K2's liveness and
    readiness endpoints.
    """
    deployment = find("Deployment", "k2-api")
    (container,) = pod_spec(deployment)["containers"]  # type: ignore[index]
    environment = container_environment(container)
    port = int(environment["K2_API_PORT"])
    assert environment["K2_API_HOST"] == "0.0.0.0"
    assert container["args"] == ["serve"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    (service_port,) = find("Service", "k2-api")["spec"]["ports"]
    assert service_port["targetPort"] == container["ports"][0]["name"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert pod_annotations(deployment) == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


@pytest.mark.parametrize("name", ["k2-sink", "k2-feed-binance"])
def test_sink_and_feed_serve_metrics_where_prometheus_scrapes(name: str) -> None:
    """A sink or feed serves its metrics on K2_OBS_METRICS_PORT of every interface (loopback would
    be unreachable from Prometheus), and the pod's scrape annotation names that port.
    """
    environment = _environment(name)
    port = environment["K2_OBS_METRICS_PORT"]
    assert environment["K2_OBS_METRICS_HOST"] == "0.0.0.0"
    workload = next(d for d in documents() if d["metadata"]["name"] == name and pod_spec(d))
    (container,) = pod_spec(workload)["containers"]  # type: ignore[index]
    assert [p["containerPort"] for p in container["ports"]] == [int(port)]
    assert pod_annotations(workload)["prometheus.io/port"] == port


def test_each_sink_is_a_static_member_of_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sink pod joins one consumer group under its own pod name, has no more replicas than a
    topic has partitions (an extra sink would idle), and does not compact inside its loop.
    """
    sinks = find("StatefulSet", "k2-sink")
    (container,) = pod_spec(sinks)["containers"]  # type: ignore[index]
    (instance,) = [v for v in container["env"] if v["name"] == "K2_STREAM_INSTANCE_ID"]
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    settings = _settings(_environment("k2-sink"), monkeypatch)
    assert settings.stream.group_id == "k2-sink"
    assert sinks["spec"]["replicas"] <= settings.kafka.partitions
    assert settings.stream.compact_min_files is None


def test_the_declared_topics_are_those_k2_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The KafkaTopics are K2's market and dead-letter topics of the ASX and Binance venues, with
    the partitions and replication K2 would create them with, so K2 finds them as it expects.
    """
    kafka = _settings(_environment("k2-sink"), monkeypatch).kafka
    expected = {}
    for venue, asset_class in VENUES.items():
        for data_type in DataType:
            expected[market_topic(asset_class, data_type, venue, kafka.topic_prefix)] = kafka.partitions
        expected[dlq_topic(venue, kafka.topic_prefix)] = dead_letters.PARTITIONS
    topics = [d["spec"] for d in documents() if d["kind"] == "KafkaTopic"]
    assert {t["topicName"]: t["partitions"] for t in topics} == expected
    assert {t["replicas"] for t in topics} == {kafka.replication_factor}


def test_kafka_keeps_an_acknowledged_message_when_a_broker_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three brokers at least, replication 3 and min.insync.replicas 2 (acks=all then needs two
    copies), for the cluster's defaults and K2's topics alike.
    """
    kafka = _settings(_environment("k2-sink"), monkeypatch).kafka
    config = find("Kafka", "k2")["spec"]["kafka"]["config"]
    brokers = [d for d in documents() if d["kind"] == "KafkaNodePool" and "broker" in d["spec"]["roles"]]
    assert sum(pool["spec"]["replicas"] for pool in brokers) >= kafka.replication_factor == 3
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    for document in documents():
        if document["kind"] == "KafkaTopic":
            assert document["spec"]["config"]["min.insync.replicas"] == 2


def test_k2s_endpoints_are_services_of_these_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker, registry, object store and catalog K2 is pointed at are the Services that
    Strimzi, the registry, MinIO and CloudNativePG provide here, on their ports.
    """
    settings = _settings(_environment("k2-api"), monkeypatch)
    kafka = find("Kafka", "k2")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    assert settings.kafka.bootstrap_servers == bootstrap
    registry = urlsplit(settings.kafka.schema_registry_url)
    assert (registry.hostname, registry.port) == _service_address("k2-registry")
    store = urlsplit(settings.lake.s3_endpoint or "")
    assert (store.hostname, store.port) == _service_address("minio")
    catalog = urlsplit(settings.catalog_uri)
    cluster = find("Cluster", "k2-pg")
    assert catalog.hostname == f"{cluster['metadata']['name']}-rw"
    assert catalog.path == f"/{cluster['spec']['bootstrap']['initdb']['database']}"
    bucket = urlsplit(settings.warehouse).hostname
    job = find("Job", "minio-make-bucket")
    assert f"k2/{bucket}" in job["spec"]["template"]["spec"]["containers"][0]["args"][0]


def _service_address(name: str) -> tuple[str, int]:
    ports = find("Service", name)["spec"]["ports"]
    return name, int(ports[0]["port"])


def test_trino_reads_the_catalog_and_warehouse_k2_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trino's Iceberg catalog has K2's catalog name (tables are grouped by it in the JDBC
    catalog), K2's warehouse, object store and region, and the same PostgreSQL database.
    """
    settings = _settings(_environment("k2-api"), monkeypatch)
    text = find("ConfigMap", "trino-config")["data"]["k2.properties"]
    properties = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert properties["iceberg.catalog.type"] == "jdbc"
    assert properties["iceberg.jdbc-catalog.catalog-name"] == settings.lake.catalog_name
    assert properties["iceberg.jdbc-catalog.default-warehouse-dir"] == settings.warehouse
    assert properties["s3.endpoint"] == settings.lake.s3_endpoint
    assert properties["s3.region"] == settings.lake.s3_region
    catalog = urlsplit(settings.catalog_uri)
    jdbc = urlsplit(properties["iceberg.jdbc-catalog.connection-url"].removeprefix("jdbc:"))
    assert (jdbc.hostname, jdbc.port, jdbc.path) == (catalog.hostname, catalog.port, catalog.path)


def test_the_apis_memory_budget_fits_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB, the row-group cache and the answer cache fit in the pod's memory limit, and the API
    reaches its last degradation level before the limit (K2's defaults are fractions of the node's
    memory, which a pod may not have).
    """
    (container,) = pod_spec(find("Deployment", "k2-api"))["containers"]  # type: ignore[index]
    settings = _settings(container_environment(container), monkeypatch)
    limit = _memory_limit(container)
    budget = (
        _BYTES.validate_python(settings.query.memory_limit)
        + settings.query.cache_bytes
        + settings.api.answer_cache_bytes
    )
    assert budget < limit
    assert max(settings.degradation.memory_bytes) < limit
