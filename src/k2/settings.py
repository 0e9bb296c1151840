"""K2's one settings tree, read from ``K2_…`` environment variables.

Each area has its own model with the prefix of its path (``K2_LAKE_WAREHOUSE``,
``K2_QUERY_MEMORY_LIMIT``); :class:`K2Settings` composes them. Entry points build it once and pass
it, or the part a component needs, down. Nothing else in K2 reads the environment.
"""

from __future__ import annotations

import itertools
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import ByteSize, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from k2.errors import ConfigurationError


def _physical_memory() -> int:
    """Bytes of memory of this machine (2 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


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
    catalog_connect_timeout_s: int = Field(
        3,
        ge=2,
        description="Seconds a PostgreSQL catalog may take to accept a connection (libpq's "
        "connect_timeout, at least 2) before the call fails as the catalog being unavailable.",
    )
    s3_connect_timeout_s: float = Field(
        2.0, gt=0, description="Seconds the object store may take to accept a connection."
    )


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
    preload_days: int = Field(
        0,
        ge=0,
        description="Days of the newest trades and quotes the API decodes into the row-group cache "
        "in the background when it starts (0: none; rows are then decoded on first use).",
    )
    rollup: bool = Field(
        True,
        description="Answer bars of whole minutes and daily summaries from the 1-minute rollup "
        "(bars_1m) when it reflects the snapshot read; false: always from the trades.",
    )
    cache_bytes: ByteSize = Field(
        default_factory=lambda: ByteSize(_physical_memory() // 4),
        ge=0,
        description="Memory for decoded row groups kept between queries, e.g. 2GiB (0: none); the "
        "API's worker processes share it. Default: a quarter of the machine's memory.",
    )
    max_limit: int = Field(1_000_000, gt=0, description="Largest limit a query may ask for.")
    engine: Literal["duckdb", "trino"] = Field(
        "duckdb",
        description="What answers the API's and CLI's reads: duckdb (in process) or trino (the "
        "Trino server at K2_QUERY_TRINO_URL; see docs/trino.md).",
    )
    trino_url: str | None = Field(
        None,
        description="Base URL of the Trino coordinator K2_QUERY_ENGINE=trino reads through. "
        "Default: the platform's Trino, http://127.0.0.1:<K2_PLATFORM_TRINO_PORT>.",
    )


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
    answer_cache_bytes: ByteSize = Field(
        default_factory=lambda: ByteSize(_physical_memory() // 16),
        ge=0,
        description="Memory for encoded answers kept per snapshot and request, e.g. 1GiB (0: none), "
        "shared by the worker processes; a snapshot never changes, so a kept answer is never stale. "
        "Default: a sixteenth of the machine's memory.",
    )

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


def _memory_thresholds() -> tuple[ByteSize, ByteSize, ByteSize, ByteSize]:
    """Resident memory of an API process at which it enters levels 1-4: half, 60, 70 and 80 % of
    the machine's memory.
    """
    total = _physical_memory()
    return (
        ByteSize(total * 5 // 10),
        ByteSize(total * 6 // 10),
        ByteSize(total * 7 // 10),
        ByteSize(total * 8 // 10),
    )


class DegradationSettings(BaseSettings):
    """When the API degrades (levels 1-4) and how much it reduces; see docs/operations/degradation.md.

    Each threshold is a list of four values, the signal at which levels 1, 2, 3 and 4 begin
    (e.g. ``K2_DEGRADATION_P99_SECONDS='[1, 2, 4, 8]'``); a level ends once every signal stayed
    below ``recover_ratio`` times its threshold for ``hold_s``.
    """

    model_config = SettingsConfigDict(env_prefix="K2_DEGRADATION_", extra="forbid")

    enabled: bool = Field(
        True, description="Decide a degradation level from the API's signals (false: level 0 always)."
    )
    p99_seconds: tuple[float, float, float, float] = Field(
        (1.0, 2.0, 4.0, 8.0),
        description="p99 of recent request durations (seconds) at which levels 1-4 begin.",
    )
    in_flight: tuple[int, int, int, int] = Field(
        (48, 96, 192, 384), description="Requests being answered at once at which levels 1-4 begin."
    )
    memory_bytes: tuple[ByteSize, ByteSize, ByteSize, ByteSize] = Field(
        default_factory=_memory_thresholds,
        description="Resident memory of the API process at which levels 1-4 begin. "
        "Default: 50, 60, 70 and 80 % of the machine's memory.",
    )
    open_breakers: tuple[int, int, int, int] = Field(
        (1, 2, 3, 4), description="Open circuit breakers at which levels 1-4 begin."
    )
    recover_ratio: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="A level ends when every signal is below this fraction of its threshold for that level.",
    )
    hold_s: float = Field(
        10.0, ge=0, description="How long the signals must stay recovered before the level falls by one."
    )
    evaluate_interval_s: float = Field(
        0.5, ge=0, description="Shortest time between two decisions of the level."
    )
    window_s: float = Field(10.0, gt=0, description="Request durations older than this leave the p99.")
    window_requests: int = Field(1000, gt=0, description="Most recent durations the p99 is taken over.")
    min_requests: int = Field(
        20,
        gt=0,
        description="Fewer durations than this in the window count as a p99 of 0 (too few).",
    )
    retry_after_s: int = Field(5, gt=0, description="Retry-After of the 503s answered at levels 3 and 4.")
    page_fraction: float = Field(
        0.5, gt=0, le=1, description="From level 2, JSON pages hold at most this fraction of K2_API_MAX_ROWS."
    )
    export_fraction: float = Field(
        0.25,
        gt=0,
        le=1,
        description="From level 2, CSV, Parquet and Arrow answers hold at most this fraction of "
        "K2_API_MAX_ROWS.",
    )

    @field_validator("p99_seconds", "in_flight", "memory_bytes", "open_breakers")
    @classmethod
    def _rising(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        """Thresholds are positive and never fall from one level to the next."""
        if value[0] <= 0 or any(b < a for a, b in itertools.pairwise(value)):
            raise ValueError(f"thresholds of levels 1-4 must be positive and non-decreasing; got {value}")
        return value


class KafkaSettings(BaseSettings):
    """The Kafka cluster and schema registry the streaming pipeline talks to."""

    model_config = SettingsConfigDict(env_prefix="K2_KAFKA_", extra="forbid")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    schema_registry_url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        description="Base URL of the Confluent-compatible schema registry API.",
    )
    partitions: int = Field(6, gt=0, description="Partitions of each market data topic K2 creates.")
    replication_factor: int = Field(1, gt=0, description="Replication factor of the topics K2 creates.")
    min_insync_replicas: int = Field(
        1,
        gt=0,
        description="min.insync.replicas of the topics K2 creates: replicas that must hold a message before "
        "an acks=all producer hears it was written; at most the replication factor.",
    )
    topic_prefix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic K2 names, e.g. 'dev.' or a test run's id; usually empty.",
    )
    delivery_timeout_ms: int = Field(
        120_000,
        ge=1_000,
        description="A produced message the broker has not acknowledged within this time fails "
        "(a bulk load then stops with an error; the live feed sends it again).",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every K2 Kafka client talks to the brokers (librdkafka's security.protocol).",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism, with a SASL_* security protocol."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")
    ssl_ca_location: Path | None = Field(
        None, description="CA certificate file that signs the brokers' certificates (SSL, SASL_SSL)."
    )
    schema_registry_auth: SecretStr | None = Field(
        None, description="'user:password' for the schema registry's HTTP basic authentication."
    )

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> Self:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"K2_KAFKA_MIN_INSYNC_REPLICAS={self.min_insync_replicas} exceeds "
                f"K2_KAFKA_REPLICATION_FACTOR={self.replication_factor}: no write could ever succeed"
            )
        return self

    @model_validator(mode="after")
    def _sasl_complete(self) -> Self:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                f"K2_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs K2_KAFKA_SASL_MECHANISM, "
                "K2_KAFKA_SASL_USERNAME and K2_KAFKA_SASL_PASSWORD"
            )
        return self


class StreamSettings(BaseSettings):
    """The Kafka → Iceberg sink: when it commits and how it reads.

    ``none`` in the environment sets an optional setting to None (``K2_STREAM_COMPACT_MIN_FILES=none``).
    """

    model_config = SettingsConfigDict(env_prefix="K2_STREAM_", extra="forbid", env_parse_none_str="none")

    group_id: str = Field("k2-sink", description="Kafka consumer group of the sink.")
    instance_id: str = Field(
        "k2-sink-1", description="Static group member id; give each sink of a group its own."
    )
    commit_interval_s: float = Field(
        10.0, gt=0, description="Longest time rows wait in the sink before an Iceberg commit."
    )
    commit_rows: int = Field(500_000, gt=0, description="Rows gathered per table before an Iceberg commit.")
    poll_messages: int = Field(10_000, gt=0, description="Most messages taken from Kafka per poll.")
    lake_outage_s: float | None = Field(
        300.0,
        gt=0,
        description="How long the sink waits, paused, for an unreachable catalog or store before it "
        "stops (nothing is lost either way; none: wait as long as the outage lasts, probing it "
        "every K2_RESILIENCE_BREAKER_RESET_S).",
    )
    compact_min_files: int | None = Field(
        16,
        ge=2,
        description="After a commit, rewrite the partitions that hold at least this many files into "
        "large ones (none: never; `k2 lake compact` then does it).",
    )


class BinanceSettings(BaseSettings):
    """The live Binance spot feed: endpoints, symbols, and how the client keeps its connection."""

    model_config = SettingsConfigDict(env_prefix="K2_BINANCE_", extra="forbid")

    ws_url: str = Field(
        "wss://stream.binance.com:9443",
        description="Base URL of Binance's WebSocket market streams (combined streams at /stream).",
    )
    rest_url: str = Field(
        "https://api.binance.com", description="Base URL of Binance's REST API (recent trades, for backfill)."
    )
    symbols: Annotated[list[str], NoDecode] = Field(
        ["BTCUSDT", "ETHUSDT", "BNBUSDT"],
        description="Pairs to stream, comma-separated, e.g. BTCUSDT,ETHUSDT,BNBUSDT.",
    )
    reconnect_backoff_base_s: float = Field(
        0.5, gt=0, description="First reconnect delay; doubles per failed attempt, with jitter."
    )
    reconnect_backoff_max_s: float = Field(
        30.0, gt=0, description="Longest delay between reconnect attempts."
    )
    ping_interval_s: float = Field(20.0, gt=0, description="Seconds between the client's keepalive pings.")
    ping_timeout_s: float = Field(
        20.0, gt=0, description="A pong not back within this many seconds marks the connection dead."
    )
    close_timeout_s: float = Field(
        2.0, gt=0, description="How long a closing handshake may take before the socket is dropped."
    )
    silence_timeout_s: float | None = Field(
        60.0,
        gt=0,
        description="Reconnect when no market message arrived for this long (None: rely on pings only).",
    )
    max_connection_age_s: float = Field(
        23 * 3600 + 50 * 60,
        gt=0,
        description="Reconnect proactively after this long; Binance cuts every connection at 24 hours.",
    )
    buffer_messages: int = Field(
        50_000,
        gt=0,
        description="Most messages held between the socket and Kafka; when full the feed stops reading.",
    )
    batch_rows: int = Field(2_000, gt=0, description="Most rows handed to the Kafka producer at once.")
    batch_linger_ms: float = Field(
        0.0,
        ge=0,
        description="Longest a row waits for more rows to join its batch (0: a batch is whatever "
        "arrived while the previous one was being produced).",
    )
    producer_linger_ms: float = Field(
        2.0,
        ge=0,
        description="Longest a message waits in the Kafka producer for its batch to fill (librdkafka's "
        "linger.ms): latency against requests per second.",
    )
    backfill_limit: int = Field(
        1000,
        gt=0,
        le=1000,
        description="Trades asked of the REST recent-trades call when filling a gap (Binance allows 1000).",
    )

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        """Accept ``BTCUSDT,ETHUSDT`` as well as a list; symbols are upper-case letters and digits."""
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            symbols = [str(part).strip().upper() for part in value]
            bad = [s for s in symbols if not (s.isascii() and s.isalnum())]
            if bad or not symbols:
                raise ValueError(f"symbols must be letters and digits, e.g. BTCUSDT; got {bad or 'none'}")
            return symbols
        return value


#: Most Kafka nodes ``k2 platform`` runs: every node is a KRaft voter, and five voters outlast two losses.
MAX_KAFKA_BROKERS = 5


class PlatformSettings(BaseSettings):
    """Where ``k2 platform`` installs the real services and keeps their data, and their ports."""

    model_config = SettingsConfigDict(env_prefix="K2_PLATFORM_", extra="forbid")

    home: Path = Field(
        Path.home() / ".cache" / "k2" / "platform",
        description="Installed service software (Kafka, MinIO, Prometheus, …); shared by data dirs.",
    )
    data: Path | None = Field(
        None, description="Service data, logs and pid files. Default: <data dir>/platform."
    )
    kafka_port: int = Field(9092, gt=0, lt=65536, description="Kafka broker port (of node 1).")
    kafka_controller_port: int = Field(
        9093, gt=0, lt=65536, description="Kafka KRaft controller port (of node 1)."
    )
    kafka_brokers: int = Field(
        1,
        ge=1,
        le=MAX_KAFKA_BROKERS,
        description="Kafka nodes, each broker and KRaft controller; with 3 the cluster survives the loss "
        "of one and K2's topics get 3 replicas. Fixed when Kafka's data is first formatted.",
    )
    kafka_port_step: int = Field(
        100,
        gt=0,
        description="Node n (from 1) listens on kafka_port and kafka_controller_port plus (n-1) times this.",
    )
    registry_port: int = Field(8081, gt=0, lt=65536, description="Schema registry port.")
    postgres_port: int = Field(5433, gt=0, lt=65536, description="PostgreSQL port.")
    minio_port: int = Field(9000, gt=0, lt=65536, description="MinIO S3 API port.")
    minio_console_port: int = Field(9001, gt=0, lt=65536, description="MinIO console port.")
    prometheus_port: int = Field(9090, gt=0, lt=65536, description="Prometheus web and API port.")
    trino: bool = Field(
        False, description="Run Trino with the platform (as `k2 platform up --with trino` does)."
    )
    trino_port: int = Field(8090, gt=0, lt=65536, description="Trino coordinator HTTP port.")
    alertmanager_port: int = Field(
        9095,
        gt=0,
        lt=65536,
        description="Alertmanager web and API port (9093 is Kafka's controller, 9094 Alertmanager's gossip).",
    )
    minio_root_user: str = Field("k2admin", description="MinIO root user; K2 uses it as its S3 access key.")
    minio_root_password: SecretStr = Field(
        SecretStr("k2-local-secret"),
        description="MinIO root password; loopback only, change it anywhere else.",
    )
    s3_bucket: str = Field("k2-lake", description="Bucket that holds the Iceberg warehouse.")
    start_timeout_s: float = Field(180.0, gt=0, description="How long a service may take to become healthy.")

    @property
    def kafka_ports(self) -> list[tuple[int, int]]:
        """Each Kafka node's broker and controller port, node 1 first."""
        step = self.kafka_port_step
        return [
            (self.kafka_port + n * step, self.kafka_controller_port + n * step)
            for n in range(self.kafka_brokers)
        ]

    @property
    def kafka_replication_factor(self) -> int:
        """Replicas of every topic on the platform's Kafka, K2's and Kafka's internal ones: three at most."""
        return min(3, self.kafka_brokers)

    @property
    def kafka_min_insync_replicas(self) -> int:
        """Replicas a write must reach: all but one, so a topic stays writable with one broker down."""
        return max(1, self.kafka_replication_factor - 1)

    @model_validator(mode="after")
    def _ports_distinct(self) -> Self:
        """Every service, and every Kafka node, listens on a port of its own."""
        named = {
            "postgres_port": [self.postgres_port],
            "minio_port": [self.minio_port],
            "minio_console_port": [self.minio_console_port],
            "registry_port": [self.registry_port],
            "prometheus_port": [self.prometheus_port],
            "alertmanager_port": [self.alertmanager_port],
            "kafka_port": [broker for broker, _ in self.kafka_ports],
            "kafka_controller_port": [controller for _, controller in self.kafka_ports],
        }
        owners: dict[int, str] = {}
        for name, ports in named.items():
            for port in ports:
                if port >= 65536:
                    raise ValueError(
                        f"K2_PLATFORM_{name.upper()} puts a Kafka node on port {port}, past 65535"
                    )
                if port in owners:
                    raise ValueError(
                        f"port {port} is taken twice, by K2_PLATFORM_{owners[port].upper()} and "
                        f"K2_PLATFORM_{name.upper()} (Kafka node n adds (n-1) x K2_PLATFORM_KAFKA_PORT_STEP)"
                    )
                owners[port] = name
        return self


class ResilienceSettings(BaseSettings):
    """The circuit breakers guarding the services K2 calls (catalog, object store, Kafka, registry)."""

    model_config = SettingsConfigDict(env_prefix="K2_RESILIENCE_", extra="forbid")

    breaker_fail_max: int = Field(
        5, gt=0, description="Consecutive failures of a dependency that open its circuit breaker."
    )
    breaker_reset_s: float = Field(
        10.0,
        gt=0,
        description="Seconds an open breaker refuses calls before it lets one probe through (half-open).",
    )


class Profile(StrEnum):
    """Where the lake lives."""

    EMBEDDED = "embedded"
    PLATFORM = "platform"


class LogLevel(StrEnum):
    """Lowest level of log lines written."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class ObsSettings(BaseSettings):
    """Logging, metrics endpoints, and the Prometheus K2 asks about its own processes."""

    model_config = SettingsConfigDict(env_prefix="K2_OBS_", extra="forbid")

    log_level: LogLevel = Field(LogLevel.WARNING, description="Lowest level of log lines written.")
    log_format: Literal["auto", "console", "json"] = Field(
        "auto", description="console on a terminal and JSON otherwise when 'auto'."
    )
    metrics_port: int | None = Field(
        None,
        gt=0,
        lt=65536,
        description="Serve the Prometheus metrics of a producer, feed or sink process on this port. "
        "Under the platform profile every process serves them, on a free port when this is unset.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Interface a process's metrics endpoint listens on: loopback, or 0.0.0.0 in a "
        "container that Prometheus scrapes from another.",
    )
    prometheus_url: str | None = Field(
        None,
        description="Base URL of the Prometheus whose HTTP query API `GET /v1/pipeline` and "
        "`k2 query pipeline` ask how the sink and feed processes are doing. Default: the platform's, "
        "http://127.0.0.1:<K2_PLATFORM_PROMETHEUS_PORT>, under the platform profile; none (no "
        "stream to report) on the embedded profile.",
    )
    prometheus_timeout_s: float = Field(
        2.0,
        gt=0,
        description="Seconds Prometheus may take to answer the pipeline's question before the "
        "stream part of the answer is reported unavailable.",
    )


class K2Settings(BaseSettings):
    """All of K2's settings.

    ``profile`` picks where the lake lives: ``embedded`` (SQLite catalog and a local warehouse in
    the data dir, no services) or ``platform`` (the PostgreSQL catalog and MinIO warehouse that
    ``k2 platform up`` runs; lake and Kafka settings left unset point at those services).
    """

    model_config = SettingsConfigDict(env_prefix="K2_", extra="forbid")

    profile: Profile = Field(
        Profile.EMBEDDED, description="embedded: no services; platform: the services of `k2 platform up`."
    )
    data_dir: Path = Field(
        Path(".k2"), description="Directory of the embedded lakehouse: catalog, warehouse, rejects."
    )
    lake: LakeSettings = Field(default_factory=LakeSettings, description="Iceberg lake settings.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Ingest settings.")
    query: QuerySettings = Field(default_factory=QuerySettings, description="Query engine settings.")
    obs: ObsSettings = Field(default_factory=ObsSettings, description="Logging settings.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="REST API settings.")
    degradation: DegradationSettings = Field(
        default_factory=DegradationSettings, description="When and how far the API degrades under load."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Kafka and registry settings.")
    stream: StreamSettings = Field(
        default_factory=StreamSettings, description="Kafka → Iceberg sink settings."
    )
    platform: PlatformSettings = Field(
        default_factory=PlatformSettings, description="Settings of the local service platform."
    )
    binance: BinanceSettings = Field(
        default_factory=BinanceSettings, description="Live Binance feed settings."
    )
    resilience: ResilienceSettings = Field(
        default_factory=ResilienceSettings, description="Circuit breaker settings."
    )

    @model_validator(mode="after")
    def _point_at_platform(self) -> Self:
        """Under the platform profile, fill the lake and Kafka settings left unset from the platform's."""
        if self.profile is not Profile.PLATFORM:
            return self
        platform = self.platform
        lake_defaults = {
            "catalog_uri": f"postgresql+psycopg://k2@127.0.0.1:{platform.postgres_port}/k2",
            "warehouse": f"s3://{platform.s3_bucket}/warehouse",
            "s3_endpoint": f"http://127.0.0.1:{platform.minio_port}",
            "s3_access_key_id": platform.minio_root_user,
            "s3_secret_access_key": platform.minio_root_password,
        }
        kafka_defaults = {
            "bootstrap_servers": ",".join(f"127.0.0.1:{broker}" for broker, _ in platform.kafka_ports),
            "replication_factor": platform.kafka_replication_factor,
            # never above a replication factor set explicitly
            "min_insync_replicas": min(
                platform.kafka_min_insync_replicas,
                self.kafka.replication_factor
                if "replication_factor" in self.kafka.model_fields_set
                else platform.kafka_replication_factor,
            ),
            "schema_registry_url": f"http://127.0.0.1:{platform.registry_port}/apis/ccompat/v7",
        }
        if "prometheus_url" not in self.obs.model_fields_set:
            self.obs = self.obs.model_copy(
                update={"prometheus_url": f"http://127.0.0.1:{platform.prometheus_port}"}
            )
        lake_set = self.lake.model_fields_set
        kafka_set = self.kafka.model_fields_set
        self.lake = self.lake.model_copy(update={k: v for k, v in lake_defaults.items() if k not in lake_set})
        self.kafka = self.kafka.model_copy(
            update={k: v for k, v in kafka_defaults.items() if k not in kafka_set}
        )
        return self

    def on_profile(self, profile: Profile) -> K2Settings:
        """These settings under ``profile``, with the platform's endpoints filled in for ``platform``."""
        return K2Settings.model_validate({**self.model_dump(exclude_unset=True), "profile": profile})

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
    def trino_url(self) -> str:
        """The Trino coordinator K2 reads through: the configured one, or the platform's."""
        return self.query.trino_url or f"http://127.0.0.1:{self.platform.trino_port}"

    @property
    def kafka_configured(self) -> bool:
        """Whether K2 runs with Kafka: on the platform, or with a broker set explicitly."""
        return self.profile is Profile.PLATFORM or "bootstrap_servers" in self.kafka.model_fields_set

    @property
    def platform_data(self) -> Path:
        """Where the local platform's services keep their data and logs."""
        return (self.platform.data or self.data_dir / "platform").resolve()

    @property
    def reject_dir(self) -> Path:
        """Where reject files are written."""
        return self.ingest.reject_dir or self.data_dir / "rejects"
