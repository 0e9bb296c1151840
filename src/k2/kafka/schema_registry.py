"""The schema registry as K2 uses it: registering a record's schema under a topic's subject
(producers), and the writer schemas of consumed messages, fetched by id and cached (consumers).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.common._httpx_compat import httpx as registry_http
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.errors import ConfigurationError, NotFoundError
from k2.kafka.clients import registry_client
from k2.kafka.errors import KafkaUnavailableError
from k2.resilience.breakers import Dependency
from k2.settings import KafkaSettings

#: Subject compatibility: a new schema version must read everything written before it.
COMPATIBILITY = "BACKWARD"


def register(client: SchemaRegistryClient, subject: str, schema: dict[str, Any]) -> int:
    """Set the subject's compatibility to :data:`COMPATIBILITY`, then register the Avro
    ``schema`` under it (or find it registered).

    Returns:
        The schema's id, which frames every value written with it.

    Raises:
        KafkaUnavailableError: the registry did not answer, or failed on its side.
        ConfigurationError: the registry refused the schema (it breaks compatibility).
    """
    try:
        client.set_compatibility(subject_name=subject, level=COMPATIBILITY)
        return client.register_schema(subject, Schema(orjson.dumps(schema).decode(), "AVRO"))
    except SchemaRegistryError as exc:
        if exc.http_status_code >= 500:
            raise KafkaUnavailableError(
                f"schema registry failed on {subject}: {exc}", Dependency.SCHEMA_REGISTRY
            ) from exc
        raise ConfigurationError(f"schema registry refused the schema of {subject}: {exc}") from exc
    except registry_http.TransportError as exc:
        raise KafkaUnavailableError(
            f"schema registry did not answer on {subject}: {exc}", Dependency.SCHEMA_REGISTRY
        ) from exc


class WriterSchemas:
    """``schemas(id)`` is the Avro schema a producer wrote with; an unknown id raises NotFoundError."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._client = registry_client(settings)
        self._schemas: dict[int, dict[str, Any]] = {}

    def __call__(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id``.

        Raises:
            NotFoundError: the registry holds no such id (the message is then a dead letter).
        """
        if schema_id not in self._schemas:
            try:
                registered = self._client.get_schema(schema_id)
            except SchemaRegistryError as error:
                if error.http_status_code == HTTPStatus.NOT_FOUND:
                    raise NotFoundError(f"schema id {schema_id} is not in the registry") from error
                raise
            self._schemas[schema_id] = orjson.loads(registered.schema_str or "{}")
        return self._schemas[schema_id]

    def close(self) -> None:
        """Close the registry client's connections."""
        self._client.close()
