"""Tables loaded from the catalog once per metadata version.

Loading a table reads and parses its metadata file (snapshots, schemas, refs), which a read path
that loads the table on every request pays again and again although the table rarely changed.
A table's metadata file never changes either: a commit writes a new one and points the catalog
at it. So :class:`TableCache` asks the catalog only for the current metadata location — one
indexed row of the SQL catalog — and reuses the parsed metadata while that location is the one
it loaded. Every caller gets its own :class:`~pyiceberg.table.Table` over the shared, immutable
metadata, so a caller that commits through its table never changes another's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.io import FileIO
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from sqlalchemy import Select, select

from k2.lake.errors import TableNotFoundError
from k2.lake.tables import TableSpec, load_table


@dataclass(frozen=True, slots=True)
class _Loaded:
    location: str
    metadata: TableMetadata
    io: FileIO


class TableCache:
    """K2's tables in one catalog namespace, reloaded only when a commit moved them on."""

    def __init__(self, catalog: Catalog, namespace: str) -> None:
        self._catalog = catalog
        self._namespace = namespace
        self._loaded: dict[str, _Loaded] = {}
        self._queries: dict[str, Select[str | None]] = {}
        self._lock = threading.Lock()

    def table(self, spec: TableSpec) -> Table:
        """``spec``'s table as the catalog has it now.

        Raises:
            TableNotFoundError: when nothing created it yet.
        """
        location = self._current_location(spec)
        with self._lock:
            loaded = self._loaded.get(spec.name)
        if loaded is None or location is None or loaded.location != location:
            table = load_table(self._catalog, self._namespace, spec)
            loaded = _Loaded(table.metadata_location, table.metadata, table.io)
            with self._lock:
                self._loaded[spec.name] = loaded
            return table
        return Table(
            identifier=(self._namespace, spec.name),
            metadata=loaded.metadata,
            metadata_location=loaded.location,
            io=loaded.io,
            catalog=self._catalog,
        )

    def _current_location(self, spec: TableSpec) -> str | None:
        """The table's metadata location from the catalog's row (None: not a SQL catalog, so
        the table is loaded every time).

        Raises:
            TableNotFoundError: when the SQL catalog has no such table.
        """
        if not isinstance(self._catalog, SqlCatalog):
            return None
        if spec.name not in self._queries:
            self._queries[spec.name] = select(IcebergTables.metadata_location).where(
                IcebergTables.catalog_name == self._catalog.name,
                IcebergTables.table_namespace == self._namespace,
                IcebergTables.table_name == spec.name,
            )
        query = self._queries[spec.name]
        with self._catalog.engine.connect() as connection:
            location = connection.execute(query).scalar_one_or_none()
        if location is None:
            raise TableNotFoundError(
                f"table {self._namespace}.{spec.name} does not exist yet; load data first (k2 ingest …)"
            )
        return str(location)
