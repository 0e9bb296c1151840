"""Writer schemas of consumed messages, fetched from the schema registry by id and cached."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.errors import NotFoundError


class WriterSchemas:
    """``schemas(id)`` is the Avro schema a producer wrote with; an unknown id raises NotFoundError."""

    def __init__(self, registry_url: str) -> None:
        self._client = SchemaRegistryClient({"url": registry_url})
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
