"""Arrange rows the way a table stores them: one slice per partition, sorted by the sort order.

Sources usually deliver runs that are already sorted (a file per symbol, in time order), so
rows are re-ordered by concatenating sorted segments, without copying, whenever that is
possible; only rows that arrive out of order pay for a full sort.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.lake.tables import TableSpec

_MAX_SEGMENTS = 4096


def _keys(rows: pa.Table, spec: TableSpec) -> list[pa.Array]:
    """The ordering keys: partition columns first, then the sort order (nulls as -1)."""
    keys: list[pa.Array] = []
    for column, transform in spec.partition_by:
        values = rows[column]
        keys.append(pc.cast(values, pa.date32()) if transform == "day" else values)
    for column in spec.sort_by:
        if column not in {c for c, t in spec.partition_by if t != "day"}:
            values = rows[column]
            keys.append(pc.fill_null(values, -1) if pa.types.is_integer(values.type) else values)
    return [k.combine_chunks() if isinstance(k, pa.ChunkedArray) else k for k in keys]


def _compare_neighbours(keys: list[pa.Array]) -> tuple[np.ndarray, list[np.ndarray]]:
    """For each row after the first: whether it is ordered after its predecessor, and for each
    key prefix whether the two rows are equal up to and including that key.
    """
    ordered = np.zeros(len(keys[0]) - 1, dtype=bool)
    equal = np.ones(len(keys[0]) - 1, dtype=bool)
    prefixes = []
    for key in keys:
        before, after = key[:-1], key[1:]
        less = pc.less(before, after).to_numpy(zero_copy_only=False)
        same = pc.equal(before, after).to_numpy(zero_copy_only=False)
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
        partition = tuple(k[start].as_py() for k in keys[:partition_width])
        first = tuple(k[start].as_py() for k in keys[partition_width:])
        segments[partition].append((first, start, stop))
    result = []
    for parts in segments.values():
        parts.sort(key=lambda part: part[0])
        table = pa.concat_tables([rows.slice(a, b - a) for _, a, b in parts])
        if not _segments_chain(parts, keys[partition_width:]):
            table = _sorted_partitions(table, _keys(table, spec), 0)[0]
        result.append(table)
    return result


def _segments_chain(parts: list[tuple[tuple[object, ...], int, int]], keys: list[pa.Array]) -> bool:
    """Whether each sorted segment ends at or before the next one starts."""
    for (_, _, stop), (first, _, _) in itertools.pairwise(parts):
        last = tuple(k[stop - 1].as_py() for k in keys)
        if last > first:
            return False
    return True


def _sorted_partitions(rows: pa.Table, keys: list[pa.Array], partition_width: int) -> list[pa.Table]:
    names = [f"k{i}" for i in range(len(keys))]
    order = pc.sort_indices(
        pa.table(dict(zip(names, keys, strict=True))), sort_keys=[(n, "ascending") for n in names]
    )
    ordered = rows.take(order)
    ordered_keys = [pc.take(k, order) for k in keys[:partition_width]]
    if not partition_width:
        return [ordered]
    change = np.zeros(rows.num_rows - 1, dtype=bool)
    for key in ordered_keys:
        change |= pc.not_equal(key[:-1], key[1:]).to_numpy(zero_copy_only=False)
    bounds = np.concatenate([[0], np.flatnonzero(change) + 1, [rows.num_rows]])
    return [ordered.slice(a, b - a) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
