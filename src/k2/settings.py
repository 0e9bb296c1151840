"""K2's one settings tree, read from ``K2_…`` environment variables.

Each area has its own model with the prefix of its path (``K2_LAKE_WAREHOUSE``,
``K2_QUERY_MEMORY_LIMIT``); :class:`K2Settings` composes them. Entry points build it once and pass
it, or the part a component needs, down. Nothing else in K2 reads the environment.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from k2.errors import ConfigurationError


class LakeSettings(BaseSettings):
    """Where the Iceberg catalog and warehouse live and how tables are written."""

    model_config = SettingsConfigDict(env_prefix="K2_LAKE_", extra="forbid")

    catalog_name: str = Field("k2", description="Name of the Iceberg catalog.")
    catalog_uri: str | None = Field(
        None,
        description=(
            "SQLAlchemy URI of the SQL catalog, e.g. postgresql+psycopg://k2@localhost/k2. "
            "Default: a SQLite file in the data directory."
        ),
    )
    warehouse: str | None = Field(
        None,
        description="Warehouse location, a local path or s3://bucket/prefix. Default: <data dir>/warehouse.",
    )
    namespace: str = Field("market_data", description="Iceberg namespace of K2's tables.")
    target_file_size_bytes: int = Field(
        128 * 1024 * 1024, gt=0, description="Size Iceberg aims for when it writes a data file."
    )
    s3_endpoint: str | None = Field(None, description="S3 endpoint URL for an S3-compatible store (MinIO).")
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    s3_region: str = Field("us-east-1", description="S3 region.")


class IngestSettings(BaseSettings):
    """How loads are chunked and where rejected rows go."""

    model_config = SettingsConfigDict(env_prefix="K2_INGEST_", extra="forbid")

    read_batch_rows: int = Field(
        1_000_000, gt=0, description="Rows parsed per record batch while reading a file."
    )
    commit_rows: int = Field(
        1_000_000, gt=0, description="Rows gathered before one Iceberg commit; bounds ingest memory."
    )
    reject_dir: Path | None = Field(
        None, description="Directory for reject files. Default: <data dir>/rejects."
    )


class QuerySettings(BaseSettings):
    """Limits of the DuckDB read path."""

    model_config = SettingsConfigDict(env_prefix="K2_QUERY_", extra="forbid")

    memory_limit: str = Field("4GB", description="DuckDB memory limit for the query engine.")
    threads: int = Field(2, gt=0, description="DuckDB worker threads.")
    default_limit: int = Field(1000, gt=0, description="Rows returned when a query names no limit.")
    max_limit: int = Field(1_000_000, gt=0, description="Largest limit a query may ask for.")


class ApiSettings(BaseSettings):
    """The REST API: where it listens, who may call it, and how much one call may ask for."""

    model_config = SettingsConfigDict(env_prefix="K2_API_", extra="forbid")

    host: str = Field("127.0.0.1", description="Interface the API listens on.")
    port: int = Field(8000, gt=0, lt=65536, description="TCP port of the API.")
    workers: int = Field(1, gt=0, description="Uvicorn worker processes.")
    keys: SecretStr | None = Field(
        None,
        description="API keys as comma-separated name:key pairs, e.g. 'alice:k1,bob:k2'. "
        "No keys means every /v1 call is refused.",
    )
    rate_limit: str = Field(
        "100/minute", description="Requests allowed per API key, in 'limits' notation (N/second|minute|hour)."
    )
    max_rows: int = Field(100_000, gt=0, description="Most rows one request may return.")
    max_symbols: int = Field(100, gt=0, description="Most symbols one request may name.")
    max_span_days: int = Field(366, gt=0, description="Longest time range one request may cover.")
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest request body accepted.")

    def key_names(self) -> dict[str, str]:
        """Map each configured key to its name."""
        if self.keys is None:
            return {}
        pairs: dict[str, str] = {}
        for entry in self.keys.get_secret_value().split(","):
            name, sep, key = entry.strip().partition(":")
            if not sep or not name.strip() or not key.strip():
                raise ConfigurationError("K2_API_KEYS must be comma-separated name:key pairs")
            pairs[key.strip()] = name.strip()
        return pairs


class LogLevel(StrEnum):
    """Lowest level of log lines written."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class ObsSettings(BaseSettings):
    """Logging."""

    model_config = SettingsConfigDict(env_prefix="K2_OBS_", extra="forbid")

    log_level: LogLevel = Field(LogLevel.WARNING, description="Lowest level of log lines written.")
    log_format: Literal["auto", "console", "json"] = Field(
        "auto", description="console on a terminal and JSON otherwise when 'auto'."
    )


class K2Settings(BaseSettings):
    """All of K2's settings."""

    model_config = SettingsConfigDict(env_prefix="K2_", extra="forbid")

    data_dir: Path = Field(
        Path(".k2"), description="Directory of the embedded lakehouse: catalog, warehouse, rejects."
    )
    lake: LakeSettings = Field(default_factory=LakeSettings, description="Iceberg lake settings.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Ingest settings.")
    query: QuerySettings = Field(default_factory=QuerySettings, description="Query engine settings.")
    obs: ObsSettings = Field(default_factory=ObsSettings, description="Logging settings.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="REST API settings.")

    @property
    def catalog_uri(self) -> str:
        """The catalog URI in force: the configured one, or the embedded SQLite file."""
        if self.lake.catalog_uri:
            return self.lake.catalog_uri
        return f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def warehouse(self) -> str:
        """The warehouse location in force: the configured one, or a folder in the data dir."""
        if self.lake.warehouse:
            return self.lake.warehouse
        return (self.data_dir / "warehouse").resolve().as_uri()

    @property
    def reject_dir(self) -> Path:
        """Where reject files are written."""
        return self.ingest.reject_dir or self.data_dir / "rejects"
