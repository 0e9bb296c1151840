"""One answer to "is my pipeline healthy?": the lake's tables from their metadata (in process),
the answering API process's degradation level and breakers, and on the platform the sink and
feed processes as Prometheus scraped them. ``GET /v1/pipeline`` and ``k2 query pipeline`` both
give it; a part that cannot be read is reported unavailable with its reason, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import structlog

from k2.errors import DependencyUnavailableError
from k2.lake.tables import BARS_1M, QUOTES, TRADES, TableSpec
from k2.obs.pipeline import StreamHealth, read_stream
from k2.query.engine import QueryEngine
from k2.query.gauges import TableReadings
from k2.resilience.degradation import Level
from k2.settings import K2Settings

log = structlog.get_logger(__name__)

#: The tables reported: the market tables and the trades' 1-minute rollup.
PIPELINE_TABLES: tuple[TableSpec, ...] = (TRADES, QUOTES, BARS_1M)
#: Why there is no stream part when no Prometheus is configured.
NO_STREAM = "no stream on the embedded profile"

#: ok: the part was read; unavailable: its source failed (reason says how); none: nothing to read.
PartStatus = Literal["ok", "unavailable", "none"]


@dataclass(frozen=True, slots=True)
class LakeTable:
    """One table's state from its metadata; ``exists`` false (and the rest empty) before its first load."""

    table: str
    exists: bool
    snapshot_id: int | None
    last_commit_at: datetime | None
    last_commit_age_s: float | None
    snapshots: int
    rows: int
    data_files: int
    partitions: int
    max_files_per_partition: int


@dataclass(frozen=True, slots=True)
class ApiHealth:
    """The answering API process: its degradation level and each circuit breaker's state."""

    degradation_level: int
    degradation_name: str
    degradation_meaning: str
    breakers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """The whole answer; ``lake`` and ``stream`` are null when their status is not ok."""

    checked_at: datetime
    profile: str
    lake: list[LakeTable] | None
    lake_status: PartStatus
    lake_reason: str | None
    api: ApiHealth | None
    stream: StreamHealth | None
    stream_status: PartStatus
    stream_reason: str | None


def api_health(level: Level, breakers: dict[str, str]) -> ApiHealth:
    """The API part for a process at ``level`` with ``breakers`` (dependency → state)."""
    return ApiHealth(int(level), level.name.lower(), level.meaning, breakers)


def lake_tables(readings: TableReadings, now: datetime) -> list[LakeTable]:
    """Each of :data:`PIPELINE_TABLES` as ``readings`` finds it, ages counted to ``now``.

    Raises:
        DependencyUnavailableError: the catalog or the store is down, or its breaker open.
    """
    found = readings.read()
    tables = []
    for spec in PIPELINE_TABLES:
        stats = found.get(spec.name)
        if stats is None:
            tables.append(LakeTable(spec.name, False, None, None, None, 0, 0, 0, 0, 0))
            continue
        committed = stats.last_commit
        tables.append(
            LakeTable(
                table=spec.name,
                exists=True,
                snapshot_id=stats.snapshot_id,
                last_commit_at=committed,
                last_commit_age_s=round((now - committed).total_seconds(), 3) if committed else None,
                snapshots=stats.snapshots,
                rows=stats.rows,
                data_files=stats.data_files,
                partitions=stats.partitions,
                max_files_per_partition=stats.max_files_per_partition,
            )
        )
    return tables


def pipeline_health(settings: K2Settings, readings: TableReadings, api: ApiHealth | None) -> PipelineHealth:
    """The pipeline's state now: the lake from ``readings``, ``api`` as given (None from the
    command line, which is no API process), the stream from the Prometheus the settings name.
    """
    now = datetime.now(UTC)
    return PipelineHealth(now, settings.profile.value, *_lake(readings, now), api, *_stream(settings))


def _lake(readings: TableReadings, now: datetime) -> tuple[list[LakeTable] | None, PartStatus, str | None]:
    try:
        return lake_tables(readings, now), "ok", None
    except DependencyUnavailableError as error:
        log.warning("pipeline_lake_unreadable", error=str(error))
        return None, "unavailable", str(error)


def _stream(settings: K2Settings) -> tuple[StreamHealth | None, PartStatus, str | None]:
    url = settings.obs.prometheus_url
    if url is None:
        return None, "none", NO_STREAM
    try:
        return read_stream(url, settings.obs.prometheus_timeout_s), "ok", None
    except DependencyUnavailableError as error:
        log.warning("pipeline_stream_unreadable", error=str(error))
        return None, "unavailable", str(error)


def engine_readings(engine: QueryEngine) -> TableReadings:
    """The readings :func:`pipeline_health` takes, over ``engine``'s catalog."""
    return TableReadings(engine, PIPELINE_TABLES)
