"""The read path over K2's Iceberg tables: snapshots, their files, decoded row groups, DuckDB.

A read resolves its snapshot from table metadata cached per metadata version
(:class:`~k2.lake.table_cache.TableCache`), prunes that snapshot's data files in memory
(:class:`~k2.lake.files.ManifestIndex`), and then either slices decoded row groups kept in
memory (:class:`~k2.query.blocks.BlockCache`: pages of ticks, narrow aggregations) or has DuckDB
scan the pruned Parquet files with every value bound as a parameter (wide aggregations). One
engine holds one DuckDB database; each query runs on its own cursor, so callers on several
threads are safe.

Every call that reaches the catalog or the warehouse's files goes through that dependency's
circuit breaker (:mod:`k2.lake.outages`): while one is open, reads fail at once with
:class:`~k2.resilience.errors.BreakerOpenError`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from k2.domain.time import to_micros
from k2.lake.errors import SnapshotNotFoundError, TableNotFoundError
from k2.lake.files import DataFileEntry, ManifestIndex, SnapshotFiles
from k2.lake.outages import store_call
from k2.lake.rollup import covering
from k2.lake.storage import attach_warehouse
from k2.lake.table_cache import TableCache
from k2.lake.tables import BARS_1M, TableSpec
from k2.query.blocks import MESSAGE_ID, BlockCache, Projection
from k2.query.errors import InvalidQueryError
from k2.resilience.breakers import Breakers
from k2.settings import QuerySettings, ResilienceSettings

SEQUENCE = "source_sequence"
PLANS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class AsOf:
    """A point in a table's history: a snapshot id, a tag, or the snapshot current at a time.

    At most one is set; none means the current snapshot.
    """

    snapshot_id: int | None = None
    tag: str | None = None
    time: datetime | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.snapshot_id, self.tag, self.time)) > 1:
            raise InvalidQueryError("give at most one of snapshot id, tag and time")


CURRENT = AsOf()


@dataclass(frozen=True, slots=True)
class Selection:
    """The rows a read selects: symbols (all if empty), an exchange, and event times in
    [``start``, ``end``); times are UTC-aware.
    """

    symbols: tuple[str, ...] = ()
    exchange: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def start_us(self) -> int | None:
        """``start`` in microseconds since the epoch."""
        return to_micros(self.start) if self.start else None

    @property
    def end_us(self) -> int | None:
        """``end`` in microseconds since the epoch."""
        return to_micros(self.end) if self.end else None

    def where_sql(self, params: dict[str, object]) -> str:
        """The SQL condition for these filters, adding bound values to ``params``."""
        clauses = ["TRUE"]
        if self.symbols:
            names = []
            for i, symbol in enumerate(self.symbols):
                params[f"s{i}"] = symbol
                names.append(f"$s{i}")
            clauses.append(f"symbol IN ({', '.join(names)})")
        if self.exchange:
            params["exchange"] = self.exchange.upper()
            clauses.append("exchange = $exchange")
        if self.start:
            params["start"] = self.start
            clauses.append("timestamp >= $start")
        if self.end:
            params["end"] = self.end
            clauses.append("timestamp < $end")
        return " AND ".join(clauses)


EVERYTHING = Selection()


@dataclass(frozen=True, slots=True)
class Scan:
    """The files a read needs, the snapshot they belong to (None: the table is empty) and the
    columns of the table as readers see them.
    """

    files: list[DataFileEntry]
    snapshot_id: int | None
    projection: Projection | None = field(default=None)

    @property
    def paths(self) -> list[str]:
        """The files' paths, as DuckDB opens them."""
        return [f.path for f in self.files]

    @property
    def rows(self) -> int:
        """Rows in the files (an upper bound of the rows selected)."""
        return sum(f.record_count for f in self.files)

    @property
    def source_sql(self) -> str:
        """A FROM item reading the files, bound to the ``$paths`` parameter."""
        return "read_parquet($paths, hive_partitioning = false)"


class QueryEngine:
    """Reads K2's tables in one catalog."""

    def __init__(
        self,
        catalog: Catalog,
        namespace: str,
        settings: QuerySettings,
        *,
        on_lookup: Callable[[bool], None] | None = None,
        breakers: Breakers | None = None,
    ) -> None:
        """Args:
        catalog: the Iceberg catalog read.
        namespace: the namespace of K2's tables in it.
        settings: the read path's limits.
        on_lookup: told of each row-group cache look-up, hit or miss.
        breakers: the process's circuit breakers; None: breakers of the default settings whose
            states no metric exports (a one-shot command).
        """
        self.catalog = catalog
        self.namespace = namespace
        self.settings = settings
        self.breakers = breakers or Breakers(ResilienceSettings())
        self._duck = duckdb.connect(
            config={"threads": settings.threads, "memory_limit": settings.memory_limit}
        )
        self._duck.execute("SET TimeZone = 'UTC'")
        attach_warehouse(self._duck, catalog.properties)
        # Iceberg never rewrites a data file in place, so Parquet footers can be cached safely.
        self._duck.execute("SET parquet_metadata_cache = true")
        self._tables = TableCache(catalog, namespace, self.breakers)
        self._manifests = ManifestIndex()
        self.blocks = BlockCache(catalog.properties, settings.cache_bytes, self.breakers, on_lookup=on_lookup)
        self._projections: dict[tuple[str, str, int], Projection] = {}
        self._rollups: dict[tuple[str, str, int], int | None] = {}

    def reading_files(self, doing: str) -> AbstractContextManager[None]:
        """A block that reads the warehouse's files (DuckDB scans) as one call to the object
        store, through its breaker.
        """
        return store_call(self.breakers, doing)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor for one caller; close it when done."""
        return self._duck.cursor()

    def close(self) -> None:
        """Close the DuckDB database."""
        self._duck.close()

    def table(self, spec: TableSpec) -> Table:
        """The Iceberg table of ``spec`` as the catalog has it now (its metadata is reloaded
        only when a commit moved it on).

        Raises:
            TableNotFoundError: when nothing was loaded into it yet.
        """
        return self._tables.table(spec)

    def snapshot_id(self, table: Table, as_of: AsOf) -> int | None:
        """The snapshot ``as_of`` names in ``table``; None for an empty table read as current.

        Raises:
            SnapshotNotFoundError: for an unknown id or tag, or a time before the first snapshot.
        """
        if as_of.snapshot_id is not None:
            if table.snapshot_by_id(as_of.snapshot_id) is None:
                raise SnapshotNotFoundError(f"{table.name()[-1]} has no snapshot {as_of.snapshot_id}")
            return as_of.snapshot_id
        if as_of.tag is not None:
            snapshot = table.snapshot_by_name(as_of.tag)
            if snapshot is None:
                raise SnapshotNotFoundError(f"{table.name()[-1]} has no tag or branch {as_of.tag!r}")
            return snapshot.snapshot_id
        if as_of.time is not None:
            snapshot = table.snapshot_as_of_timestamp(to_micros(as_of.time) // 1000)
            if snapshot is None:
                raise SnapshotNotFoundError(
                    f"{table.name()[-1]} has no snapshot as of {as_of.time.isoformat()}"
                )
            return snapshot.snapshot_id
        current = table.current_snapshot()
        return current.snapshot_id if current else None

    def scan(self, spec: TableSpec, selection: Selection = EVERYTHING, as_of: AsOf = CURRENT) -> Scan:
        """The data files of ``spec`` at ``as_of`` that may hold rows of ``selection``.

        Raises:
            TableNotFoundError: when nothing was loaded into the table yet.
            SnapshotNotFoundError: for an unknown ``as_of``.
        """
        table = self.table(spec)
        snapshot_id = self.snapshot_id(table, as_of)
        if snapshot_id is None:
            return Scan([], None)
        files = self.snapshot_files(table, spec, snapshot_id)
        exchanges = (selection.exchange.upper(),) if selection.exchange else ()
        chosen = files.select(selection.symbols, exchanges, selection.start_us, selection.end_us)
        return Scan(chosen, snapshot_id, self.projection(spec, table))

    def rollup_snapshot(self, trades: Table, trades_snapshot: int) -> int | None:
        """The snapshot of the 1-minute rollup reflecting ``trades_snapshot`` of ``trades``, if
        there is one (see :mod:`k2.lake.rollup`).
        """
        try:
            rollup = self.table(BARS_1M)
        except TableNotFoundError:
            return None
        key = (rollup.metadata_location, trades.metadata_location, trades_snapshot)
        if key not in self._rollups:
            if len(self._rollups) > PLANS_KEPT:
                self._rollups.clear()
            self._rollups[key] = covering(rollup, trades, trades_snapshot)
        return self._rollups[key]

    def snapshot_files(self, table: Table, spec: TableSpec, snapshot_id: int) -> SnapshotFiles:
        """Every live data file of ``table`` at ``snapshot_id`` (manifests not read before are read
        through the object store's breaker).
        """
        with store_call(self.breakers, f"read the manifests of {spec.name}"):
            return self._manifests.files(table, snapshot_id, spec.time_column)

    def projection(self, spec: TableSpec, table: Table) -> Projection:
        """The record's columns of ``spec`` with their field ids in ``table``'s current schema."""
        schema = table.schema()
        key = (spec.name, str(table.metadata.table_uuid), schema.schema_id)
        known = self._projections.get(key)
        if known is None:
            arrow = spec.record.arrow_schema()
            known = Projection(
                names=tuple(arrow.names),
                field_ids=tuple(schema.find_field(name).field_id for name in arrow.names),
                types=tuple(f.type for f in arrow),
                symbol=spec.sort_by[0] if spec.sort_by else "",
                time=spec.time_column or "",
                sequence=SEQUENCE if SEQUENCE in spec.sort_by else None,
                tie=MESSAGE_ID if MESSAGE_ID in arrow.names else None,
            )
            self._projections[key] = known
        return known

    def run(self, sql: str, params: dict[str, object]) -> pa.Table:
        """Run ``sql`` with bound ``params`` on a fresh cursor and return Arrow."""
        cursor = self.cursor()
        try:
            with self.reading_files("run a query"):
                return cursor.sql(sql, params=params).to_arrow_table()
        finally:
            cursor.close()
