"""Client settings for librdkafka and the schema registry, from K2's Kafka settings.

Every Kafka client K2 makes starts from :func:`client_config`, so the brokers and the security
settings (TLS, SASL) are written once; each client adds only what its role needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.settings import KafkaSettings

ConfigValue = str | int | float | bool


def client_config(
    settings: KafkaSettings, client_id: str, extra: Mapping[str, ConfigValue] | None = None
) -> dict[str, ConfigValue]:
    """The librdkafka settings of a client named ``client_id``: brokers and security from
    ``settings``, then ``extra`` (its role's own settings).
    """
    config: dict[str, ConfigValue] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        "security.protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism is not None:
        config["sasl.mechanism"] = settings.sasl_mechanism
    if settings.sasl_username is not None:
        config["sasl.username"] = settings.sasl_username
    if settings.sasl_password is not None:
        config["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.ssl_ca_location)
    return {**config, **(extra or {})}


def registry_client(settings: KafkaSettings) -> SchemaRegistryClient:
    """A client of the schema registry ``settings`` names (with its basic authentication, if set)."""
    config = {"url": settings.schema_registry_url}
    if settings.schema_registry_auth is not None:
        config["basic.auth.user.info"] = settings.schema_registry_auth.get_secret_value()
    return SchemaRegistryClient(config)
