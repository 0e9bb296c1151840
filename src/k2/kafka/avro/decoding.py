"""Avro's binary decoding of many records of one schema at once, a field at a time.

fastavro reads one record per call, about 12 µs for a trade: most of the sink's time. Records of
one schema have their fields in the same order, so this keeps a read position per record and
reads each field for every record together with numpy: varints a byte at a time across all
records, strings and bytes as one gather, union branches, and array and map blocks an item at a
time across the records that still have one. Anything it does not expect (a negative block
count, a varint or value running past its record, bytes left over, invalid UTF-8, an enum index
or decimal out of range) makes it give the batch up: :class:`~k2.kafka.avro.codec.RecordCodec`
then reads it with fastavro, record by record, which says what is wrong with which one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from k2.kafka.avro.physical import decimals_from_unscaled_bytes
from k2.schemas.record import Column, Kind

_MAX_VARINT_BYTES = 10
#: Zero bytes after the data, so a read running past a record's end stays inside the buffer
#: (such a record is then refused by its position).
_PADDING = np.zeros(_MAX_VARINT_BYTES, dtype=np.uint8)


class _Unreadable(Exception):  # noqa: N818 - internal control flow, never leaves this module
    """The batch holds something this decoder does not read; fastavro will say what."""


class _Cursor:
    """The bytes of every record and where each record's next field starts."""

    def __init__(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.data = np.concatenate([data, _PADDING])
        self.pos = starts.astype(np.int64)
        self.ends = ends.astype(np.int64)

    def varints(self, rows: np.ndarray) -> np.ndarray:
        """Read one zig-zag varint (``long``/``int``) at the position of each of ``rows``."""
        at = self.pos[rows]
        value = np.zeros(len(rows), dtype=np.uint64)
        length = np.zeros(len(rows), dtype=np.int64)
        open_ = np.ones(len(rows), dtype=bool)
        for k in range(_MAX_VARINT_BYTES):
            byte = self.data[np.minimum(at + k, len(self.data) - 1)].astype(np.uint64)
            value[open_] |= (byte[open_] & np.uint64(0x7F)) << np.uint64(7 * k)
            length += open_
            open_ &= (byte & np.uint64(0x80)) != 0
            if not open_.any():
                break
        if open_.any():
            raise _Unreadable("a varint longer than 10 bytes")
        self.pos[rows] = at + length
        self._check(rows)
        magnitude = (value >> np.uint64(1)).astype(np.int64)
        sign = (value & np.uint64(1)).astype(np.int64)
        signed: np.ndarray = magnitude ^ -sign
        return signed

    def byte(self, rows: np.ndarray) -> np.ndarray:
        """Read one byte at the position of each of ``rows``."""
        value: np.ndarray = self.data[self.pos[rows]]
        self.pos[rows] += 1
        self._check(rows)
        return value

    def blobs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Read one length-prefixed ``bytes``/``string`` for each of ``rows``: offsets and data."""
        lengths = self.varints(rows)
        if (lengths < 0).any():
            raise _Unreadable("a negative length")
        at = self.pos[rows]
        self.pos[rows] = at + lengths
        self._check(rows)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] >= 2**31:
            raise _Unreadable("more than 2 GiB of strings")
        return offsets.astype(np.int32), self.data[_ranges(at, lengths, int(offsets[-1]))]

    def finished(self) -> bool:
        """Whether every record was read to its last byte."""
        return bool((self.pos == self.ends).all())

    def _check(self, rows: np.ndarray) -> None:
        if (self.pos[rows] > self.ends[rows]).any():
            raise _Unreadable("a record ends early")


def decode_bodies(
    columns: tuple[Column, ...], schema: pa.Schema, data: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> pa.Table | None:
    """Records written with exactly ``columns``' Avro schema, each ``data[starts[i]:ends[i]]``,
    as a table of ``schema``; None when the batch holds anything this decoder does not read.
    """
    cursor = _Cursor(data, starts, ends)
    everyone = np.arange(len(starts))
    arrays: list[pa.Array] = []
    try:
        for column in columns:
            arrow_type = schema.field(column.name).type
            if column.required:
                arrays.append(_read(column, arrow_type, cursor, everyone))
                continue
            branch = cursor.varints(everyone)
            if ((branch != 0) & (branch != 1)).any():
                raise _Unreadable("a union branch other than null or the value")
            present = np.flatnonzero(branch == 1)
            values = _read(column, arrow_type, cursor, present)
            slots = np.full(len(everyone), -1, dtype=np.int64)
            slots[present] = np.arange(len(present))
            arrays.append(values.take(pa.array(slots, mask=slots < 0)))
        if not cursor.finished():
            return None
        table = pa.Table.from_arrays(arrays, schema=schema)
        table.validate(full=True)  # UTF-8 of every string among them
    except (_Unreadable, pa.ArrowInvalid):
        return None
    return table


def _read(column: Column, arrow_type: pa.DataType, cursor: _Cursor, rows: np.ndarray) -> pa.Array:
    """The values of ``column`` of ``rows``, read at their positions."""
    match column.kind:
        case Kind.STRING:
            offsets, data = cursor.blobs(rows)
            return _strings(offsets, data)
        case Kind.ENUM:
            index = _within(cursor.varints(rows), 0, len(column.symbols))
            return pa.array(column.symbols, pa.string()).take(pa.array(index))
        case Kind.LONG:
            return pa.array(cursor.varints(rows), pa.int64())
        case Kind.TIMESTAMP:
            return pa.array(cursor.varints(rows), pa.int64()).cast(arrow_type)
        case Kind.DATE:
            days = _within(cursor.varints(rows), -(2**31), 2**31)
            return pa.array(days.astype(np.int32), pa.int32()).cast(arrow_type)
        case Kind.BOOLEAN:
            flags = _within(cursor.byte(rows), 0, 2)
            return pa.array(flags.astype(bool), pa.bool_())
        case Kind.DECIMAL:
            offsets, data = cursor.blobs(rows)
            binary = pa.Array.from_buffers(
                pa.binary(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
            )
            array, out_of_range = decimals_from_unscaled_bytes(binary, arrow_type)
            if out_of_range.any():
                raise _Unreadable(f"a {column.name} beyond {arrow_type}")
            return array
        case Kind.STRING_LIST:
            offsets, (items,) = _items(cursor, rows, strings_per_item=1)
            return pa.ListArray.from_arrays(offsets, items, type=arrow_type)
        case Kind.STRING_MAP:
            offsets, (keys, values) = _items(cursor, rows, strings_per_item=2)
            return pa.MapArray.from_arrays(offsets, keys, values, type=arrow_type)


def _ranges(starts: np.ndarray, lengths: np.ndarray, total: int) -> np.ndarray:
    """The indices ``starts[i]``, ``starts[i] + 1``, ... ``starts[i] + lengths[i] - 1``, for each
    ``i`` in turn: as steps of 1 with a jump where one range ends, summed up.
    """
    used = lengths > 0
    starts, lengths = starts[used], lengths[used]
    steps = np.ones(total, dtype=np.int64)
    if total:
        steps[0] = starts[0]
        ends = np.cumsum(lengths)[:-1]
        steps[ends] = starts[1:] - (starts[:-1] + lengths[:-1]) + 1
    index: np.ndarray = np.cumsum(steps)
    return index


def _within(values: np.ndarray, low: int, high: int) -> np.ndarray:
    """``values``, all of them in ``[low, high)``."""
    if len(values) and (int(values.min()) < low or int(values.max()) >= high):
        raise _Unreadable(f"a value outside [{low}, {high})")
    return values


def _strings(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(
        pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    )


def _items(cursor: _Cursor, rows: np.ndarray, *, strings_per_item: int) -> tuple[pa.Array, list[pa.Array]]:
    """Read an array or map of strings for each of ``rows``: the list offsets, and the items'
    strings (one array per string of an item: the element, or the key and the value), in order.

    Items are read in rounds, one item of every record that still has one per round; a record
    whose block is used up reads its next block count, and is done at a count of 0.
    """
    remaining = cursor.varints(rows)
    owners: list[np.ndarray] = []
    rounds: list[list[pa.Array]] = []
    active = remaining > 0
    while True:
        if (remaining < 0).any():
            raise _Unreadable("a negative block count (a block with its size)")
        if not active.any():
            break
        which = np.flatnonzero(active)
        rounds.append([_strings(*cursor.blobs(rows[which])) for _ in range(strings_per_item)])
        owners.append(which)
        remaining[which] -= 1
        used_up = which[remaining[which] == 0]
        if len(used_up):
            remaining[used_up] = cursor.varints(rows[used_up])
            active[used_up] = remaining[used_up] > 0
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    order = pa.array(np.argsort(owner, kind="stable"))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(np.bincount(owner, minlength=len(rows)), out=offsets[1:])
    strings = [
        pa.concat_arrays([r[k] for r in rounds]).take(order) if rounds else pa.array([], pa.string())
        for k in range(strings_per_item)
    ]
    return pa.array(offsets), strings
