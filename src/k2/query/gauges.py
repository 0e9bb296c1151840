"""The lake's state as Prometheus gauges, read from table metadata when scraped: rows, data
files, bytes, partitions, the fullest partition's file count (compaction due), snapshots, and
the time of the last commit (data freshness).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from k2.lake.errors import LakeUnavailableError, TableNotFoundError
from k2.lake.tables import MARKET_TABLES, TableSpec
from k2.query.engine import QueryEngine
from k2.query.metadata import TableStats, empty_stats, table_stats

log = structlog.get_logger(__name__)

#: Scrapes within this many seconds of the last reading share it. A table whose current
#: snapshot has not changed keeps its figures (counting partitions reads every manifest).
FRESH_S = 10.0

_GAUGES = (
    ("k2_iceberg_table_rows", "Rows in a table at its current snapshot.", "rows"),
    ("k2_iceberg_table_data_files", "Data files in a table at its current snapshot.", "data_files"),
    ("k2_iceberg_table_bytes", "Bytes of a table's data files at its current snapshot.", "bytes"),
    ("k2_iceberg_table_partitions", "Daily partitions of a table.", "partitions"),
    (
        "k2_iceberg_partition_files_max",
        "Data files in a table's fullest partition: compaction is due when it grows.",
        "max_files_per_partition",
    ),
    ("k2_iceberg_table_snapshots", "Snapshots a table keeps.", "snapshots"),
)


class TableReadings:
    """Each of ``specs``' figures, from its metadata: a table whose current snapshot has not
    changed since the last reading keeps its figures (counting partitions reads every manifest).
    Safe to share between threads.
    """

    def __init__(self, engine: QueryEngine, specs: tuple[TableSpec, ...]) -> None:
        self._engine = engine
        self._specs = specs
        self._lock = threading.Lock()
        self._tables: dict[str, TableStats | None] = {}

    def read(self) -> dict[str, TableStats | None]:
        """Each table's figures by name, None for a table not created yet.

        Raises:
            LakeUnavailableError: the catalog or the store is down.
            BreakerOpenError: the catalog's or the store's breaker is open.
        """
        with self._lock:
            self._tables = {spec.name: self._read(spec) for spec in self._specs}
            return dict(self._tables)

    def _read(self, spec: TableSpec) -> TableStats | None:
        """``spec``'s figures: those already read when its current snapshot is the same."""
        known = self._tables.get(spec.name)
        try:
            current = self._engine.table(spec).current_snapshot()
        except TableNotFoundError:
            return None
        if known is not None and current is not None and known.snapshot_id == current.snapshot_id:
            return known
        return table_stats(self._engine, spec)


class LakeGauges(Collector):
    """Gauges of K2's market tables, for the process that serves queries."""

    def __init__(self, engine: QueryEngine) -> None:
        self._readings = TableReadings(engine, MARKET_TABLES)
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._tables: list[TableStats] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One family per figure, a sample per table (none while the lake cannot be read)."""
        tables = self._current()
        for name, documentation, field in _GAUGES:
            family = GaugeMetricFamily(name, documentation, labels=["table"])
            for table in tables:
                family.add_metric([table.table], float(getattr(table, field)))
            yield family
        committed = GaugeMetricFamily(
            "k2_iceberg_last_commit_timestamp_seconds",
            "Unix time of a table's current snapshot (its last commit, by any writer).",
            labels=["table"],
        )
        for table in tables:
            if table.last_commit is not None:
                committed.add_metric([table.table], table.last_commit.timestamp())
        yield committed

    def _current(self) -> list[TableStats]:
        """The tables' figures, read again when the last reading is older than :data:`FRESH_S`; a
        table not created yet counts as empty.
        """
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= FRESH_S:
                try:
                    read = self._readings.read()
                    self._tables = [read[spec.name] or empty_stats(spec) for spec in MARKET_TABLES]
                except (LakeUnavailableError, OSError) as error:
                    log.warning("lake_gauges_unreadable", error=str(error))
                    self._tables = []
                self._read_at = now
            return self._tables
