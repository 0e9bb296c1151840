from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from k2.settings import K2Settings, KafkaSettings, PlatformSettings, Profile


def _models() -> list[type[BaseSettings]]:
    models: list[type[BaseSettings]] = [K2Settings]
    for field in K2Settings.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            models.append(annotation)
    return models


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_setting_is_documented_and_prefixed(model: type[BaseSettings]) -> None:
    """Each setting has a description and reads a K2_-prefixed environment variable."""
    prefix = model.model_config.get("env_prefix", "")
    assert str(prefix).startswith("K2_")
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"


def test_environment_reaches_nested_areas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """K2_DATA_DIR and per-area variables such as K2_LAKE_WAREHOUSE configure the tree."""
    monkeypatch.setenv("K2_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("K2_LAKE_WAREHOUSE", "s3://lake/warehouse")
    monkeypatch.setenv("K2_QUERY_MEMORY_LIMIT", "1GB")
    settings = K2Settings()
    assert settings.data_dir == tmp_path
    assert settings.warehouse == "s3://lake/warehouse"
    assert settings.query.memory_limit == "1GB"
    assert settings.catalog_uri == f"sqlite:///{tmp_path.resolve() / 'catalog.db'}"


def test_default_lake_lives_in_the_data_dir(tmp_path: Path) -> None:
    """Two data directories never share a catalog, warehouse or reject folder."""
    a, b = K2Settings(data_dir=tmp_path / "a"), K2Settings(data_dir=tmp_path / "b")
    assert a.catalog_uri != b.catalog_uri
    assert a.warehouse != b.warehouse
    assert a.reject_dir != b.reject_dir


def test_prometheus_and_alertmanager_ports_default_clear_of_kafka() -> None:
    """Prometheus on 9090 and Alertmanager on 9095: 9093 is Kafka's controller, 9094 Alertmanager's gossip."""
    platform = K2Settings().platform
    assert (platform.prometheus_port, platform.alertmanager_port) == (9090, 9095)
    assert platform.alertmanager_port not in {platform.kafka_port, platform.kafka_controller_port}


def test_sink_compaction_and_outage_limit_can_be_switched_off_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """K2_STREAM_COMPACT_MIN_FILES=none and K2_STREAM_LAKE_OUTAGE_S=none mean never, as documented."""
    monkeypatch.setenv("K2_STREAM_COMPACT_MIN_FILES", "none")
    monkeypatch.setenv("K2_STREAM_LAKE_OUTAGE_S", "none")
    stream = K2Settings().stream
    assert stream.compact_min_files is None
    assert stream.lake_outage_s is None


def test_three_brokers_get_ports_clear_of_every_service_and_three_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """K2_PLATFORM_KAFKA_BROKERS=3 puts nodes 2 and 3 a port step above node 1, on ports no other
    service uses; K2's clients bootstrap from all three and create topics with 3 replicas, 2 in sync.
    """
    monkeypatch.setenv("K2_PLATFORM_KAFKA_BROKERS", "3")
    settings = K2Settings(profile=Profile.PLATFORM)
    platform = settings.platform
    assert platform.kafka_ports == [(9092, 9093), (9192, 9193), (9292, 9293)]
    others = {
        platform.registry_port,
        platform.postgres_port,
        platform.minio_port,
        platform.minio_console_port,
        platform.prometheus_port,
        platform.alertmanager_port,
    }
    assert not others & {port for ports in platform.kafka_ports for port in ports}
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292"
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)


def test_one_broker_keeps_one_replica() -> None:
    """The default platform is one broker, its topics one replica, as before brokers were a setting."""
    settings = K2Settings(profile=Profile.PLATFORM)
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (1, 1)


def test_an_explicit_replication_factor_caps_the_insync_replicas() -> None:
    """A replication factor set by hand on three brokers never leaves min.insync.replicas above it."""
    settings = K2Settings(
        profile=Profile.PLATFORM,
        platform=PlatformSettings(kafka_brokers=3),
        kafka=KafkaSettings(replication_factor=1),
    )
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (1, 1)


def test_a_kafka_node_on_another_service_port_is_refused() -> None:
    """A port step that lands node 2 on the registry's port fails validation, naming both settings."""
    with pytest.raises(ValidationError, match="K2_PLATFORM_REGISTRY_PORT and K2_PLATFORM_KAFKA_PORT"):
        PlatformSettings(kafka_brokers=2, kafka_port=8081 - 100)


def test_more_insync_replicas_than_replicas_is_refused() -> None:
    """min.insync.replicas above the replication factor would refuse every acks=all write."""
    with pytest.raises(ValidationError, match="K2_KAFKA_MIN_INSYNC_REPLICAS"):
        KafkaSettings(replication_factor=1, min_insync_replicas=2)


def test_the_platforms_prometheus_is_asked_about_the_stream_and_none_on_the_embedded_profile() -> None:
    """Under the platform profile the pipeline's Prometheus is the platform's, on its own port (two
    checkouts' platforms never answer for each other); the embedded profile has none; a URL set
    explicitly wins.
    """
    platform = K2Settings(profile=Profile.PLATFORM, platform=PlatformSettings(prometheus_port=19090))
    assert platform.obs.prometheus_url == "http://127.0.0.1:19090"
    assert platform.obs.prometheus_timeout_s == 2.0
    assert K2Settings().obs.prometheus_url is None
    explicit = K2Settings.model_validate(
        {"profile": "platform", "obs": {"prometheus_url": "http://prometheus.internal:9090"}}
    )
    assert explicit.obs.prometheus_url == "http://prometheus.internal:9090"
