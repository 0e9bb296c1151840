"""Arrange rows the way a table stores them: one slice per partition, sorted by the sort order.

Sources usually deliver runs that are already sorted (a file per symbol, in time order), so
rows are re-ordered by concatenating sorted segments, without copying, whenever that is
possible; only rows that arrive out of order pay for a full sort.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.lake.tables import TableSpec

_MAX_SEGMENTS = 4096


@dataclass(frozen=True, slots=True)
class _Text:
    """A text key, kept as its column's chunks."""

    values: pa.ChunkedArray

    def __len__(self) -> int:
        return len(self.values)


Key = np.ndarray | _Text


def _keys(rows: pa.Table, spec: TableSpec) -> list[Key]:
    """The ordering keys: partition columns first, then the sort order. Numbers, times and days
    become int64 numpy arrays (nulls as -1); text stays as it is, chunk by chunk.
    """
    keys: list[Key] = []
    for column, transform in spec.partition_by:
        keys.append(_number_key(rows[column], day=True) if transform == "day" else _text_key(rows[column]))
    for column in spec.sort_by:
        if column not in {c for c, t in spec.partition_by if t != "day"}:
            keys.append(_text_key(rows[column]))
    return keys


def _is_text(values: pa.ChunkedArray) -> bool:
    return bool(pa.types.is_string(values.type) or pa.types.is_large_string(values.type))


def _text_key(values: pa.ChunkedArray) -> Key:
    return _Text(values) if _is_text(values) else _number_key(values)


def _number_key(values: pa.ChunkedArray, *, day: bool = False) -> np.ndarray:
    """``values`` as int64 (times in their unit, nulls as -1); ``day`` turns times into days."""
    if pa.types.is_timestamp(values.type):
        units = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[values.type.unit]
        numbers = pc.fill_null(pc.cast(values, pa.int64()), -1).to_numpy()
        result: np.ndarray = numbers // (86_400 * units) if day else numbers
        return result
    numbers = pc.fill_null(pc.cast(values, pa.int32()) if pa.types.is_date(values.type) else values, -1)
    result = numbers.to_numpy().astype(np.int64, copy=False)
    return result


def _value(key: Key, i: int) -> object:
    return key.values[i].as_py() if isinstance(key, _Text) else key[i].item()


def _neighbours(key: Key) -> tuple[np.ndarray, np.ndarray]:
    """For each row after the first: whether its key is greater than its predecessor's, and
    whether the two are equal. Text is compared chunk by chunk, and not at all inside a chunk
    holding one value (one source file's symbol).
    """
    if not isinstance(key, _Text):
        before, after = key[:-1], key[1:]
        return before < after, before == after
    n = len(key)
    greater = np.zeros(n - 1, dtype=bool)
    equal = np.ones(n - 1, dtype=bool)
    start = 0
    previous: object = None
    for chunk in key.values.chunks:
        size = len(chunk)
        if size == 0:
            continue
        if start:
            first = chunk[0].as_py()
            # A null is neither before nor equal to anything, as in the element-wise comparisons.
            both = previous is not None and first is not None
            greater[start - 1] = both and previous < first
            equal[start - 1] = both and previous == first
        low_high = pc.min_max(chunk)
        if chunk.null_count or low_high["min"].as_py() != low_high["max"].as_py():
            before, after = chunk[:-1], chunk[1:]
            greater[start : start + size - 1] = pc.less(before, after).to_numpy(zero_copy_only=False)
            equal[start : start + size - 1] = pc.equal(before, after).to_numpy(zero_copy_only=False)
        previous = chunk[size - 1].as_py()
        start += size
    return greater, equal


def _compare_neighbours(keys: list[Key]) -> tuple[np.ndarray, list[np.ndarray]]:
    """For each row after the first: whether it is ordered after its predecessor, and for each
    key prefix whether the two rows are equal up to and including that key.
    """
    ordered = np.zeros(len(keys[0]) - 1, dtype=bool)
    equal = np.ones(len(keys[0]) - 1, dtype=bool)
    prefixes = []
    for key in keys:
        less, same = _neighbours(key)
        ordered |= equal & less
        equal &= same
        prefixes.append(equal.copy())
    return ordered | equal, prefixes


def arrange(rows: pa.Table, spec: TableSpec) -> list[pa.Table]:
    """Split ``rows`` into one table per partition, each sorted by ``spec.sort_by``."""
    if rows.num_rows == 0:
        return []
    keys = _keys(rows, spec)
    if rows.num_rows == 1:
        return [rows]
    in_order, prefixes = _compare_neighbours(keys)
    partition_width = len(spec.partition_by)
    same_partition = prefixes[partition_width - 1] if partition_width else np.ones(len(in_order), dtype=bool)
    same_group = prefixes[partition_width] if len(prefixes) > partition_width else same_partition
    cuts = np.flatnonzero(~(same_group & in_order)) + 1
    if len(cuts) > _MAX_SEGMENTS:
        return _sorted_partitions(rows, keys, partition_width)
    bounds = np.concatenate([[0], cuts, [rows.num_rows]])
    segments: dict[tuple[object, ...], list[tuple[tuple[object, ...], int, int]]] = defaultdict(list)
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        partition = tuple(_value(k, start) for k in keys[:partition_width])
        first = tuple(_value(k, start) for k in keys[partition_width:])
        segments[partition].append((first, start, stop))
    result = []
    for parts in segments.values():
        parts.sort(key=lambda part: part[0])
        table = pa.concat_tables([rows.slice(a, b - a) for _, a, b in parts])
        if not _segments_chain(parts, keys[partition_width:]):
            table = _sorted_partitions(table, _keys(table, spec), 0)[0]
        result.append(table)
    return result


def _segments_chain(parts: list[tuple[tuple[object, ...], int, int]], keys: list[Key]) -> bool:
    """Whether each sorted segment ends at or before the next one starts."""
    for (_, _, stop), (first, _, _) in itertools.pairwise(parts):
        last = tuple(_value(k, stop - 1) for k in keys)
        if last > first:
            return False
    return True


def _sorted_partitions(rows: pa.Table, keys: list[Key], partition_width: int) -> list[pa.Table]:
    names = [f"k{i}" for i in range(len(keys))]
    columns = [k.values if isinstance(k, _Text) else pa.chunked_array([k]) for k in keys]
    order = pc.sort_indices(
        pa.table(dict(zip(names, columns, strict=True))), sort_keys=[(n, "ascending") for n in names]
    )
    ordered = rows.take(order)
    ordered_keys = [pc.take(k, order) for k in columns[:partition_width]]
    if not partition_width:
        return [ordered]
    change = np.zeros(rows.num_rows - 1, dtype=bool)
    for key in ordered_keys:
        change |= pc.not_equal(key[:-1], key[1:]).to_numpy(zero_copy_only=False)
    bounds = np.concatenate([[0], np.flatnonzero(change) + 1, [rows.num_rows]])
    return [ordered.slice(a, b - a) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
