"""Arrow columns as the physical values Avro encodes, and back, a whole column at a time.

A ``decimal`` travels as its unscaled integer in big-endian two's-complement ``bytes``, a
``timestamp-micros`` as a ``long`` of microseconds, a ``date`` as an ``int`` of days. numpy
converts whole columns, so fastavro never builds a ``Decimal`` or ``datetime`` per value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.schemas.record import Kind

_INT64_BYTES = 8


def to_physical(kind: Kind, column: pa.ChunkedArray) -> list[Any]:
    """A column's values as fastavro writes them for the schema without logical types."""
    match kind:
        case Kind.DECIMAL:
            return _decimal_to_bytes(column.combine_chunks())
        case Kind.TIMESTAMP:
            column = column.cast(pa.int64())
        case Kind.DATE:
            column = column.cast(pa.int32())
        case Kind.STRING_MAP:
            return [None if pairs is None else dict(pairs) for pairs in column.to_pylist()]
        case Kind.STRING | Kind.ENUM | Kind.LONG | Kind.BOOLEAN | Kind.STRING_LIST:
            pass
    values: list[Any] = column.to_pylist()
    return values


def from_physical(kind: Kind, values: list[Any], arrow_type: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """An Arrow array of ``arrow_type`` from decoded physical values, and a mask of the values
    that do not fit it.
    """
    match kind:
        case Kind.DECIMAL:
            return _decimal_from_bytes(values, arrow_type)
        case Kind.TIMESTAMP:
            array = pa.array(values, pa.int64()).cast(arrow_type)
        case Kind.DATE:
            array = pa.array(values, pa.int32()).cast(arrow_type)
        case _:
            array = pa.array(values, arrow_type)
    return array, np.zeros(len(values), dtype=bool)


def _decimal_to_bytes(array: pa.Array) -> list[bytes | None]:
    """Decimal values as Avro ``decimal`` bytes: the unscaled integer, big-endian two's complement
    in as few bytes as fastavro writes it, None where null. The precision must be 18 or less.
    """
    n = len(array)
    # An unscaled value of up to 18 digits is the low, little-endian 64 bits of its 128-bit slot.
    words = np.frombuffer(array.buffers()[1], dtype="<i8")[2 * array.offset : 2 * (array.offset + n)]
    unscaled = words[0::2]
    magnitude = np.abs(unscaled)
    sizes = np.ones(n, dtype=np.int32)
    for k in range(1, _INT64_BYTES):
        sizes += magnitude >= 1 << (8 * k - 1)
    big_endian = unscaled.astype(">i8").view(np.uint8).reshape(n, _INT64_BYTES)
    data = big_endian[np.arange(_INT64_BYTES) >= (_INT64_BYTES - sizes)[:, None]]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    binary = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    if array.null_count:
        binary = pc.if_else(array.is_valid(), binary, pa.scalar(None, pa.binary()))
    values: list[bytes | None] = binary.to_pylist()
    return values


def _decimal_from_bytes(values: list[bytes | None], arrow_type: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Avro ``decimal`` bytes as a decimal array of ``arrow_type`` (precision 18 or less), and a
    mask of the values that do not fit it.
    """
    binary = pa.array(values, pa.binary())
    n = len(binary)
    offsets = np.frombuffer(binary.buffers()[1], dtype=np.int32)[: n + 1]
    body = binary.buffers()[2]
    data = np.frombuffer(body, dtype=np.uint8) if body is not None else np.zeros(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    too_long = lengths > _INT64_BYTES
    used = np.where(too_long, 0, lengths)
    starts = offsets[:-1]
    # Sign-extend every value to 8 bytes, then copy its own bytes over the right end.
    first = np.zeros(n, dtype=np.uint8)
    first[used > 0] = data[starts[used > 0]]
    padded = np.zeros((n, _INT64_BYTES), dtype=np.uint8)
    padded[first >= 0x80] = 0xFF
    rows = np.repeat(np.arange(n), used)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(used) - used, used)
    padded[rows, _INT64_BYTES - np.repeat(used, used) + within] = data[np.repeat(starts, used) + within]
    unscaled = padded.view(">i8").ravel().astype(np.int64)
    limit = 10**arrow_type.precision
    out_of_range = too_long | (unscaled >= limit) | (unscaled <= -limit)
    slots = np.empty((n, 2), dtype=np.int64)
    slots[:, 0] = unscaled
    slots[:, 1] = unscaled >> 63  # the high word of a 128-bit two's complement: all sign bits
    array = pa.Array.from_buffers(arrow_type, n, [binary.buffers()[0], pa.py_buffer(slots)])
    return array, out_of_range
