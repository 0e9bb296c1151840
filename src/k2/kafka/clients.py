"""Client settings for librdkafka and the schema registry, from K2's Kafka settings.

Every Kafka client K2 makes starts from :func:`client_config`, so the brokers and the security
settings (TLS, SASL) are written once; each client adds only what its role needs. librdkafka's
own log lines (a broker that is not ready yet, a retried request) go through K2's logs, at their
level, as ``librdkafka`` events, instead of straight to stderr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import structlog
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.settings import KafkaSettings

#: A librdkafka setting: a value, K2's logger, or a callback (statistics, errors).
ConfigValue = str | int | float | bool | logging.Logger | Callable[[str], None]


class _IntoK2Logs(logging.Handler):
    """Hands librdkafka's log records (which confluent-kafka gives to a Python logger) to K2's
    structured logs.
    """

    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger(record.name).log(record.levelno, "librdkafka", detail=record.getMessage())


#: The logger every K2 Kafka client hands librdkafka's log lines to.
LIBRDKAFKA_LOG = logging.getLogger("k2.kafka.librdkafka")
LIBRDKAFKA_LOG.addHandler(_IntoK2Logs())
LIBRDKAFKA_LOG.setLevel(logging.DEBUG)
LIBRDKAFKA_LOG.propagate = False


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
        "logger": LIBRDKAFKA_LOG,
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


def admin_client(settings: KafkaSettings, client_id: str) -> AdminClient:
    """An admin client of the cluster ``settings`` names (its logger given the way AdminClient
    takes it).
    """
    config = {k: v for k, v in client_config(settings, client_id).items() if isinstance(v, str | int | float)}
    return AdminClient(config, logger=LIBRDKAFKA_LOG)


def registry_client(settings: KafkaSettings) -> SchemaRegistryClient:
    """A client of the schema registry ``settings`` names (with its basic authentication, if set)."""
    config = {"url": settings.schema_registry_url}
    if settings.schema_registry_auth is not None:
        config["basic.auth.user.info"] = settings.schema_registry_auth.get_secret_value()
    return SchemaRegistryClient(config)
