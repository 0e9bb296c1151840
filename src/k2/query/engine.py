"""The DuckDB read path over K2's Iceberg tables.

pyiceberg plans each read (partition and file-statistics pruning, snapshot selection), and
DuckDB scans the planned Parquet files with every value bound as a parameter. One engine holds
one DuckDB database; each query runs on its own cursor, so callers on several threads are safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import Table

from k2.domain.time import to_micros
from k2.lake.errors import SnapshotNotFoundError
from k2.lake.scan import data_paths
from k2.lake.storage import attach_warehouse
from k2.lake.tables import TableSpec, load_table
from k2.query.errors import InvalidQueryError
from k2.settings import QuerySettings

PLAN_CACHE_SIZE = 512


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
class Scan:
    """The files a query reads and the snapshot they belong to (None: the table is empty)."""

    paths: list[str]
    snapshot_id: int | None

    @property
    def source_sql(self) -> str:
        """A FROM item reading the files, bound to the ``$paths`` parameter."""
        return "read_parquet($paths, hive_partitioning = false)"


class QueryEngine:
    """Reads K2's tables in one catalog."""

    def __init__(self, catalog: Catalog, namespace: str, settings: QuerySettings) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self.settings = settings
        self._duck = duckdb.connect(
            config={"threads": settings.threads, "memory_limit": settings.memory_limit}
        )
        self._duck.execute("SET TimeZone = 'UTC'")
        attach_warehouse(self._duck, catalog.properties)
        self._plans: OrderedDict[tuple[str, object, int, str], list[str]] = OrderedDict()
        self._plans_lock = threading.Lock()
        # Iceberg never rewrites a data file in place, so Parquet footers can be cached safely.
        self._duck.execute("SET parquet_metadata_cache = true")

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor for one caller; close it when done."""
        return self._duck.cursor()

    def close(self) -> None:
        """Close the DuckDB database."""
        self._duck.close()

    def table(self, spec: TableSpec) -> Table:
        """The Iceberg table of ``spec``, freshly loaded from the catalog.

        Raises:
            TableNotFoundError: when nothing was loaded into it yet.
        """
        return load_table(self.catalog, self.namespace, spec)

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

    def scan(
        self, spec: TableSpec, row_filter: BooleanExpression | None = None, as_of: AsOf = CURRENT
    ) -> Scan:
        """Plan a read of ``spec`` at ``as_of`` restricted by ``row_filter``.

        Plans are cached per snapshot and filter: a snapshot never changes, so a cached plan
        stays right, and a new commit simply gives a new snapshot id.
        """
        table = self.table(spec)
        snapshot_id = self.snapshot_id(table, as_of)
        if snapshot_id is None:
            return Scan([], None)
        key = (spec.name, table.metadata.table_uuid, snapshot_id, repr(row_filter))
        with self._plans_lock:
            paths = self._plans.get(key)
            if paths is not None:
                self._plans.move_to_end(key)
                return Scan(paths, snapshot_id)
        paths = data_paths(table, row_filter, snapshot_id)
        with self._plans_lock:
            self._plans[key] = paths
            if len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return Scan(paths, snapshot_id)

    def run(self, sql: str, params: dict[str, object]) -> pa.Table:
        """Run ``sql`` with bound ``params`` on a fresh cursor and return Arrow."""
        cursor = self.cursor()
        try:
            return cursor.sql(sql, params=params).to_arrow_table()
        finally:
            cursor.close()
