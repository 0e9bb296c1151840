"""Row groups of the lake's data files, decoded once and kept in memory for range reads.

A data file never changes once written, so a row group decoded for one read can answer every
later read that needs it. Each cached row group (a *block*) holds its rows in K2's order —
symbol, event time, source sequence (null as -1), message id — with an index: where each
symbol's rows start and end, and their event times and sequences as numpy arrays, so a read of
a symbol and time range is two binary searches and a zero-copy slice. Columns are decoded on
first use, one at a time, so a bar query caches only the columns bars need.

The cache is bounded in bytes (``K2_QUERY_CACHE_BYTES``) and evicts the least recently used
entries first; files are opened by path (the warehouse's file system) and matched to the table's
columns by Iceberg field id, so a column renamed in the table or added after a file was written
reads correctly (as null in older files).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from k2.errors import ConfigurationError
from k2.lake.files import DataFileEntry
from k2.lake.outages import store_call
from k2.lake.storage import file_system, is_object_store, path_within
from k2.resilience.breakers import Breakers

FIELD_ID = b"PARQUET:field_id"
FOOTERS_KEPT = 4096
MESSAGE_ID = "message_id"


@dataclass(frozen=True, slots=True)
class Projection:
    """The columns a table's readers ask for (name, Iceberg field id, Arrow type), and those
    that order its rows: symbol, event time, sequence (when the table has one) and the column
    that breaks ties (when it has one).
    """

    names: tuple[str, ...]
    field_ids: tuple[int, ...]
    types: tuple[pa.DataType, ...]
    symbol: str
    time: str
    sequence: str | None
    tie: str | None

    @property
    def keys(self) -> tuple[str, ...]:
        """The columns a block's index is built from."""
        return tuple(name for name in (self.symbol, self.time, self.sequence) if name is not None)

    def field_id(self, name: str) -> int:
        """The field id of column ``name``."""
        return self.field_ids[self.names.index(name)]

    def type_of(self, name: str) -> pa.DataType:
        """The Arrow type readers get for column ``name``."""
        return self.types[self.names.index(name)]


@dataclass(frozen=True, slots=True)
class _Layout:
    """A file's footer as K2 uses it: row groups and their bounds, and columns by field id."""

    metadata: pq.FileMetaData
    columns: dict[int, str]
    rows: np.ndarray
    symbol_low: list[str | None]
    symbol_high: list[str | None]
    time_low: np.ndarray
    time_high: np.ndarray


@dataclass(frozen=True, slots=True)
class RowGroup:
    """One row group of one data file."""

    file: DataFileEntry
    index: int
    rows: int


@dataclass(frozen=True, slots=True)
class Block:
    """The index of a decoded row group, whose rows are in K2's order.

    ``order`` is the permutation that puts the file's rows in that order (None when they were),
    ``runs`` maps each symbol to its rows ``[start, stop)``, ``times`` and ``sequences`` are the
    rows' event times (µs) and source sequences (null as -1).
    """

    group: RowGroup
    order: pa.Array | None
    runs: dict[str, tuple[int, int]]
    times: np.ndarray
    sequences: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the index."""
        order = self.order.nbytes if self.order is not None else 0
        return int(self.times.nbytes + self.sequences.nbytes + order + 64 * len(self.runs))


@dataclass
class CacheCounters:
    """Hits and misses of the block cache since it was made."""

    hits: int = 0
    misses: int = 0


class BlockCache:
    """Decoded row groups and their columns, least recently used evicted past ``max_bytes``.

    Safe to share between threads; a column two threads miss at once is decoded twice.
    """

    def __init__(
        self,
        catalog_properties: Mapping[str, str],
        max_bytes: int,
        breakers: Breakers,
        *,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self._breakers = breakers
        self.counters = CacheCounters()
        self._properties = dict(catalog_properties)
        self._on_lookup = on_lookup
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[object, ...], tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._layouts: OrderedDict[str, _Layout] = OrderedDict()
        self._object_store: pafs.FileSystem | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def row_groups(
        self,
        file: DataFileEntry,
        projection: Projection,
        symbols: Sequence[str] = (),
        start_us: int | None = None,
        end_us: int | None = None,
    ) -> list[RowGroup]:
        """The row groups of ``file`` whose statistics allow rows of ``symbols`` in
        [``start_us``, ``end_us``).
        """
        layout = self._layout(file, projection)
        keep = np.ones(len(layout.rows), dtype=bool)
        if start_us is not None:
            keep &= layout.time_high >= start_us
        if end_us is not None:
            keep &= layout.time_low < end_us
        groups = []
        for index in np.flatnonzero(keep).tolist():
            low, high = layout.symbol_low[index], layout.symbol_high[index]
            if (
                symbols
                and low is not None
                and high is not None
                and not any(low <= s <= high for s in symbols)
            ):
                continue
            groups.append(RowGroup(file, index, int(layout.rows[index])))
        return groups

    def blocks(
        self, groups: Sequence[RowGroup], projection: Projection, columns: Sequence[str], *, workers: int
    ) -> list[Block]:
        """:meth:`block` of each of ``groups`` with ``columns`` decoded, those not kept yet decoded
        on up to ``workers`` threads at once (Parquet decoding lets go of the GIL).
        """
        missing = [g for g in groups if not self._holds(("block", *self._group_key(g)))]
        if workers > 1 and len(missing) > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="k2-decode") as pool:
                list(
                    pool.map(
                        lambda g: self.columns(self.block(g, projection, columns), projection, columns),
                        missing,
                    )
                )
        return [self.block(g, projection, columns) for g in groups]

    def block(self, group: RowGroup, projection: Projection, columns: Sequence[str] = ()) -> Block:
        """The index of ``group``, its rows put in K2's order; ``columns`` (besides the sort
        keys, which are kept too) are decoded in the same pass when the block is new.
        """
        key = ("block", *self._group_key(group))
        cached = self._get(key)
        if isinstance(cached, Block):
            return cached
        names = list(dict.fromkeys([*projection.keys, *columns]))
        read = self._read(group, projection, names, None)
        tie = projection.tie
        block = _index(
            group,
            read,
            projection,
            (lambda: self._read(group, projection, (tie,), None)[tie]) if tie is not None else None,
        )
        self._put(key, block, block.nbytes)
        for name, array in read.items():
            ordered = array.take(block.order) if block.order is not None else array
            self._put(self._column_key(group, name), ordered, ordered.nbytes)
        return block

    @staticmethod
    def _group_key(group: RowGroup) -> tuple[object, ...]:
        return (group.file.location, group.file.size_bytes, group.index)

    @staticmethod
    def _column_key(group: RowGroup, name: str) -> tuple[object, ...]:
        return ("column", *BlockCache._group_key(group), name)

    def columns(self, block: Block, projection: Projection, names: Sequence[str]) -> pa.Table:
        """Columns ``names`` of ``block``'s rows, in the block's order."""
        group = block.group
        arrays: dict[str, pa.Array] = {}
        missing = []
        for name in names:
            cached = self._get(self._column_key(group, name))
            if isinstance(cached, pa.Array):
                arrays[name] = cached
            else:
                missing.append(name)
        if missing:
            read = self._read(group, projection, missing, block.order)
            for name in missing:
                array = read[name]
                arrays[name] = array
                self._put(self._column_key(group, name), array, array.nbytes)
        return pa.table({name: arrays[name] for name in names})

    def _read(
        self, group: RowGroup, projection: Projection, names: Sequence[str], order: pa.Array | None
    ) -> dict[str, pa.Array]:
        """Decode columns ``names`` of ``group`` (matched by field id; null where the file lacks
        them), cast to the projection's types and put in ``order``.
        """
        layout = self._layout(group.file, projection)
        wanted = {name: layout.columns.get(projection.field_id(name)) for name in names}
        present = sorted({column for column in wanted.values() if column is not None})
        table = None
        if present:
            with store_call(self._breakers, "read a data file"):
                table = pq.ParquetFile(self._source(group.file), metadata=layout.metadata).read_row_group(
                    group.index, columns=present, use_threads=False
                )
        result = {}
        for name, column in wanted.items():
            kind = projection.type_of(name)
            if column is None or table is None:
                array = pa.nulls(group.rows, kind)
            else:
                chunks = table[column]
                # One chunk is taken as it is: combining copies it, and under mimalloc a copy of
                # every column of every row group (the first is freed at once) costs ~4x the decoding.
                array = chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()
                if array.type != kind:
                    array = array.cast(kind)
            result[name] = array.take(order) if order is not None else array
        return result

    def _layout(self, file: DataFileEntry, projection: Projection) -> _Layout:
        with self._lock:
            known = self._layouts.get(file.location)
            if known is not None:
                self._layouts.move_to_end(file.location)
                return known
        with store_call(self._breakers, "read a data file's footer"):
            metadata = pq.ParquetFile(self._source(file)).metadata
        layout = _layout_of(metadata, projection)
        with self._lock:
            self._layouts[file.location] = layout
            if len(self._layouts) > FOOTERS_KEPT:
                self._layouts.popitem(last=False)
        return layout

    def _source(self, file: DataFileEntry) -> str | pa.NativeFile:
        if not is_object_store(file.location):
            return file.path
        with self._lock:
            if self._object_store is None:
                self._object_store, _ = file_system(file.location, self._properties)
            store = self._object_store
        return store.open_input_file(path_within(file.location))

    def _holds(self, key: tuple[object, ...]) -> bool:
        with self._lock:
            return key in self._entries

    def _get(self, key: tuple[object, ...]) -> object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.counters.hits += 1
            else:
                self.counters.misses += 1
        if self._on_lookup is not None:
            self._on_lookup(entry is not None)
        return entry[0] if entry is not None else None

    def _put(self, key: tuple[object, ...], value: object, size: int) -> None:
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            if size > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, (_, freed) = self._entries.popitem(last=False)
                self._bytes -= freed


def _layout_of(metadata: pq.FileMetaData, projection: Projection) -> _Layout:
    schema = metadata.schema.to_arrow_schema()
    columns: dict[int, str] = {}
    for field in schema:
        raw = (field.metadata or {}).get(FIELD_ID)
        if raw is not None:
            columns[int(raw)] = field.name
    symbol_name = columns.get(projection.field_id(projection.symbol))
    time_name = columns.get(projection.field_id(projection.time))
    unit = schema.field(time_name).type.unit if time_name is not None else "us"
    groups = metadata.num_row_groups
    rows = np.array([metadata.row_group(i).num_rows for i in range(groups)], dtype=np.int64)
    symbol_low: list[str | None] = [None] * groups
    symbol_high: list[str | None] = [None] * groups
    time_low = np.full(groups, np.iinfo(np.int64).min, dtype=np.int64)
    time_high = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    for i in range(groups):
        group = metadata.row_group(i)
        for position, path in enumerate(paths):
            if path not in (symbol_name, time_name):
                continue
            stats = group.column(position).statistics
            if stats is None or not stats.has_min_max:
                continue
            if path == symbol_name:
                symbol_low[i], symbol_high[i] = _text(stats.min_raw), _text(stats.max_raw)
            else:
                time_low[i] = _micros(int(stats.min_raw), unit, up=False)
                time_high[i] = _micros(int(stats.max_raw), unit, up=True)
    return _Layout(metadata, columns, rows, symbol_low, symbol_high, time_low, time_high)


def _micros(value: int, unit: str, *, up: bool) -> int:
    """A timestamp of ``unit`` in whole microseconds, rounded down (or ``up``)."""
    if unit == "ns":
        return -(-value // 1000) if up else value // 1000
    return value * {"s": 1_000_000, "ms": 1000, "us": 1}[unit]


def _text(raw: object) -> str | None:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="surrogateescape")
    return raw if isinstance(raw, str) else None


def _index(
    group: RowGroup, read: dict[str, pa.Array], projection: Projection, ties: Callable[[], pa.Array] | None
) -> Block:
    """Index the row group from its key columns in ``read``.

    Rows already in K2's order with no two of a symbol sharing time and sequence (the case of
    every file K2 writes from a venue with sequence numbers) keep the file's order; otherwise
    they are sorted, ``ties`` (the message ids) deciding between rows that tie.
    """
    symbols, stamps = read[projection.symbol], read[projection.time]
    if symbols.null_count or stamps.null_count:
        raise ConfigurationError(f"{group.file.location}: symbols and event times may not be null")
    times = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    if projection.sequence is None:
        sequences = np.zeros(len(times), dtype=np.int64)
    else:
        sequences = (
            pc.fill_null(read[projection.sequence], -1).cast(pa.int64()).to_numpy(zero_copy_only=False)
        )
    runs = _runs(symbols)
    if runs is not None and _strictly_ordered(times, sequences, runs):
        return Block(group, None, runs, times, sequences)
    sort_keys = {"s": symbols, "t": pa.array(times), "q": pa.array(sequences)}
    if ties is not None:
        sort_keys["m"] = ties()
    order = pc.sort_indices(pa.table(sort_keys), sort_keys=[(name, "ascending") for name in sort_keys])
    positions = order.to_numpy()
    sorted_runs = _runs(symbols.take(order))
    if sorted_runs is None:  # a sort by symbol always leaves each symbol's rows contiguous
        raise ConfigurationError(f"{group.file.location}: could not order row group {group.index}")
    times, sequences = np.ascontiguousarray(times[positions]), np.ascontiguousarray(sequences[positions])
    return Block(group, order, sorted_runs, times, sequences)


def _runs(symbols: pa.Array) -> dict[str, tuple[int, int]] | None:
    """Each symbol's rows ``[start, stop)``; None unless the symbols ascend, each in one run."""
    if len(symbols) == 0:
        return {}
    encoded = pc.run_end_encode(symbols)
    values = encoded.values.to_pylist()
    if any(a >= b for a, b in itertools.pairwise(values)):
        return None
    ends = encoded.run_ends.to_numpy().tolist()
    return {value: (start, end) for value, start, end in zip(values, [0, *ends[:-1]], ends, strict=True)}


def _strictly_ordered(times: np.ndarray, sequences: np.ndarray, runs: dict[str, tuple[int, int]]) -> bool:
    """Whether, within each symbol, every row comes after the one before by (time, sequence)."""
    if len(times) < 2:
        return True
    step_time = np.diff(times)
    out_of_order = (step_time < 0) | ((step_time == 0) & (np.diff(sequences) <= 0))
    for _, stop in runs.values():
        if stop - 1 < len(out_of_order):
            out_of_order[stop - 1] = False  # a symbol's last row against the next symbol's first
    return not bool(out_of_order.any())
