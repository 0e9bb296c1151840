"""The live data files of a table's snapshot, gathered from its manifests once and pruned in memory.

Planning through pyiceberg re-reads and re-evaluates every manifest for each new filter (about
15-35 ms on a table of 60 files), and almost every request of the API has a filter not seen
before. Snapshots and manifests never change, so :class:`ManifestIndex` reads each manifest once,
keeps every live data file with its partition values and the bounds of the columns K2 selects by
(symbol, exchange, event time), and a read prunes them with numpy. A new snapshot reads only the
manifests it added.

Pruning keeps every file that may hold a matching row (files without bounds are always kept);
readers apply the exact filters to the rows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from pyiceberg.conversions import from_bytes
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestFile
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import PrimitiveType

from k2.errors import ConfigurationError
from k2.lake.scan import local_path

SYMBOL = "symbol"
EXCHANGE = "exchange"
MANIFESTS_KEPT = 4096
SNAPSHOTS_KEPT = 64
_NO_DAY = np.iinfo(np.int64).min
_MIN_US = np.iinfo(np.int64).min
_MAX_US = np.iinfo(np.int64).max
_DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class DataFileEntry:
    """One data file: where it is, its size, its partition and the bounds K2 prunes by.

    ``day`` is the file's partition day (days since 1970-01-01) and ``exchange`` its partition
    exchange, None when the partition does not pin them. Bounds are None when unknown.
    """

    location: str
    path: str
    size_bytes: int
    record_count: int
    day: int | None
    exchange: str | None
    symbol_bounds: tuple[str, str] | None
    time_bounds_us: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class _Columns:
    """Field ids and types of the columns pruned by, in one table."""

    time_column: str | None
    ids: dict[str, int]
    types: dict[int, PrimitiveType]


class SnapshotFiles:
    """The live data files of one snapshot, as arrays that prune in microseconds."""

    def __init__(self, files: Sequence[DataFileEntry]) -> None:
        self.files = tuple(files)
        self._day = np.array([_NO_DAY if f.day is None else f.day for f in files], dtype=np.int64)
        self._exchange = np.array([f.exchange for f in files], dtype=object)
        self._symbol_low = np.array([f.symbol_bounds[0] if f.symbol_bounds else None for f in files], object)
        self._symbol_high = np.array([f.symbol_bounds[1] if f.symbol_bounds else None for f in files], object)
        self._time_low = np.array([f.time_bounds_us[0] if f.time_bounds_us else _MIN_US for f in files])
        self._time_high = np.array([f.time_bounds_us[1] if f.time_bounds_us else _MAX_US for f in files])

    @property
    def record_count(self) -> int:
        """Rows in all the files."""
        return sum(f.record_count for f in self.files)

    def select(
        self,
        symbols: Collection[str] = (),
        exchanges: Collection[str] = (),
        start_us: int | None = None,
        end_us: int | None = None,
        *,
        end_inclusive: bool = False,
    ) -> list[DataFileEntry]:
        """The files that may hold rows of ``symbols`` (all if empty) at ``exchanges`` (all if
        empty) with event times in [``start_us``, ``end_us``) (or ``]`` with ``end_inclusive``).
        """
        if not self.files:
            return []
        keep = np.ones(len(self.files), dtype=bool)
        if symbols:
            known = np.array([low is not None for low in self._symbol_low])
            match = ~known
            for symbol in symbols:
                match |= known & (self._symbol_low <= symbol) & (self._symbol_high >= symbol)
            keep &= match
        if exchanges:
            pinned = np.array([e is not None for e in self._exchange])
            keep &= ~pinned | np.isin(self._exchange, list(exchanges))
        has_day = self._day != _NO_DAY
        if start_us is not None:
            keep &= self._time_high >= start_us
            keep &= ~has_day | (self._day >= start_us // _DAY_US)
        if end_us is not None:
            keep &= (self._time_low <= end_us) if end_inclusive else (self._time_low < end_us)
            last_day = end_us // _DAY_US if end_inclusive else (end_us - 1) // _DAY_US
            keep &= ~has_day | (self._day <= last_day)
        return [self.files[i] for i in np.flatnonzero(keep)]


class ManifestIndex:
    """Live data files per snapshot, built from manifests read once each (both kept LRU-bounded).

    Safe to share between threads.
    """

    def __init__(self) -> None:
        self._manifests: OrderedDict[str, list[DataFileEntry]] = OrderedDict()
        self._snapshots: OrderedDict[tuple[str, int], SnapshotFiles] = OrderedDict()
        self._lock = threading.Lock()

    def files(self, table: Table, snapshot_id: int, time_column: str | None) -> SnapshotFiles:
        """The live data files of ``table`` at ``snapshot_id``.

        Raises:
            ConfigurationError: if the snapshot has delete files, which K2 never writes; reading
                such a table by file would return deleted rows.
        """
        key = (str(table.metadata.table_uuid), snapshot_id)
        with self._lock:
            known = self._snapshots.get(key)
            if known is not None:
                self._snapshots.move_to_end(key)
                return known
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise ConfigurationError(f"{table.name()} has no snapshot {snapshot_id}")
        columns = _columns(table, time_column)
        entries: list[DataFileEntry] = []
        for manifest in snapshot.manifests(table.io):
            entries.extend(self._entries(table, manifest, columns))
        files = SnapshotFiles(entries)
        with self._lock:
            self._snapshots[key] = files
            if len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
        return files

    def _entries(self, table: Table, manifest: ManifestFile, columns: _Columns) -> list[DataFileEntry]:
        key = f"{manifest.manifest_path}|{columns.time_column}"
        with self._lock:
            known = self._manifests.get(key)
            if known is not None:
                self._manifests.move_to_end(key)
                return known
        spec = table.specs()[manifest.partition_spec_id]
        entries = []
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if manifest.content != ManifestContent.DATA or entry.data_file.content != DataFileContent.DATA:
                raise ConfigurationError(
                    f"{table.name()} has delete files; K2 writes append-only tables and cannot read them"
                )
            entries.append(_entry(entry.data_file, spec, columns))
        with self._lock:
            self._manifests[key] = entries
            if len(self._manifests) > MANIFESTS_KEPT:
                self._manifests.popitem(last=False)
        return entries


def describe(table: Table, data_file: DataFile, spec_id: int, time_column: str | None) -> DataFileEntry:
    """``data_file`` of ``table`` (written under partition spec ``spec_id``) as K2 prunes it."""
    return _entry(data_file, table.specs()[spec_id], _columns(table, time_column))


def _columns(table: Table, time_column: str | None) -> _Columns:
    ids: dict[str, int] = {}
    types: dict[int, PrimitiveType] = {}
    schema = table.schema()
    for name in (SYMBOL, EXCHANGE, time_column):
        if name is None:
            continue
        try:
            field = schema.find_field(name)
        except ValueError:
            continue
        if isinstance(field.field_type, PrimitiveType):
            ids[name] = field.field_id
            types[field.field_id] = field.field_type
    return _Columns(time_column, ids, types)


def _bounds(data_file: DataFile, column: str | None, columns: _Columns) -> tuple[object, object] | None:
    field_id = columns.ids.get(column) if column else None
    if field_id is None:
        return None
    lower, upper = data_file.lower_bounds or {}, data_file.upper_bounds or {}
    if field_id not in lower or field_id not in upper:
        return None
    kind = columns.types[field_id]
    return from_bytes(kind, lower[field_id]), from_bytes(kind, upper[field_id])


def _entry(data_file: DataFile, spec: PartitionSpec, columns: _Columns) -> DataFileEntry:
    day: int | None = None
    exchange: str | None = None
    time_id = columns.ids.get(columns.time_column) if columns.time_column else None
    for position, field in enumerate(spec.fields):
        value = data_file.partition[position]
        if value is None:
            continue
        if isinstance(field.transform, DayTransform) and field.source_id == time_id:
            day = int(value)
        elif isinstance(field.transform, IdentityTransform) and field.source_id == columns.ids.get(EXCHANGE):
            exchange = str(value)
    symbols = _bounds(data_file, SYMBOL, columns)
    times = _bounds(data_file, columns.time_column, columns)
    return DataFileEntry(
        location=data_file.file_path,
        path=local_path(data_file.file_path),
        size_bytes=data_file.file_size_in_bytes,
        record_count=data_file.record_count,
        day=day,
        exchange=exchange,
        symbol_bounds=(str(symbols[0]), str(symbols[1])) if symbols else None,
        time_bounds_us=(_micros(times[0]), _micros(times[1])) if times else None,
    )


def _micros(value: object) -> int:
    if not isinstance(value, int):
        raise ConfigurationError(f"event-time bounds must be timestamps, not {type(value).__name__}")
    return value
