"""Tables loaded from the catalog once per metadata version.

Loading a table reads and parses its metadata file (snapshots, schemas, refs), which a read path
that loads the table on every request pays again and again although the table rarely changed.
A table's metadata file never changes either: a commit writes a new one and points the catalog
at it. So :class:`TableCache` asks the catalog only for the current metadata location — one
indexed row of the SQL catalog — and reuses the parsed metadata while that location is the one
it loaded. The catalog's row is read through the catalog's breaker and the metadata file through
the object store's (:mod:`k2.lake.outages`). Every caller gets its own
:class:`~pyiceberg.table.Table` over the shared, immutable metadata, so a caller that commits
through its table never changes another's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import IcebergTables, SqlCatalog
from pyiceberg.io import FileIO, load_file_io
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from sqlalchemy import Select, select

from k2.lake.errors import TableNotFoundError
from k2.lake.outages import catalog_call, lake_call, store_call
from k2.lake.tables import TableSpec, load_table
from k2.resilience.breakers import Breakers


@dataclass(frozen=True, slots=True)
class _Loaded:
    location: str
    metadata: TableMetadata
    io: FileIO


class TableCache:
    """K2's tables in one catalog namespace, reloaded only when a commit moved them on."""

    def __init__(self, catalog: Catalog, namespace: str, breakers: Breakers) -> None:
        self._catalog = catalog
        self._namespace = namespace
        self._breakers = breakers
        self._loaded: dict[str, _Loaded] = {}
        self._queries: dict[str, Select[str | None]] = {}
        self._lock = threading.Lock()

    def table(self, spec: TableSpec) -> Table:
        """``spec``'s table as the catalog has it now.

        Raises:
            TableNotFoundError: when nothing created it yet.
            BreakerOpenError: the catalog's or the store's breaker is open.
            LakeUnavailableError: the catalog or the store is down.
        """
        location = self._current_location(spec)
        if location is None:
            with lake_call(self._breakers, f"load {spec.name}"):
                return load_table(self._catalog, self._namespace, spec)
        with self._lock:
            loaded = self._loaded.get(spec.name)
        if loaded is None or loaded.location != location:
            with store_call(self._breakers, f"read the metadata of {spec.name}"):
                metadata = FromInputFile.table_metadata(
                    load_file_io(self._catalog.properties, location).new_input(location)
                )
            io = load_file_io({**self._catalog.properties, **metadata.properties}, location)
            loaded = _Loaded(location, metadata, io)
            with self._lock:
                self._loaded[spec.name] = loaded
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
        with (
            catalog_call(self._breakers, f"find {spec.name}"),
            self._catalog.engine.connect() as connection,
        ):
            location = connection.execute(query).scalar_one_or_none()
        if location is None:
            raise TableNotFoundError(
                f"table {self._namespace}.{spec.name} does not exist yet; load data first (k2 ingest …)"
            )
        return str(location)
