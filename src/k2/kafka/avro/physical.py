"""Decoded Avro physical values back into Arrow columns, a whole column at a time.

A ``decimal`` travels as its unscaled integer in big-endian two's-complement ``bytes``, a
``timestamp-micros`` as a ``long`` of microseconds, a ``date`` as an ``int`` of days. numpy
converts whole columns, so fastavro never builds a ``Decimal`` or ``datetime`` per value.
(Encoding is :mod:`k2.kafka.avro.encoding`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from k2.schemas.record import Kind

_INT64_BYTES = 8


def from_physical(kind: Kind, values: list[Any], arrow_type: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """An Arrow array of ``arrow_type`` from decoded physical values, and a mask of the values
    that do not fit it.
    """
    match kind:
        case Kind.DECIMAL:
            return decimals_from_unscaled_bytes(pa.array(values, pa.binary()), arrow_type)
        case Kind.TIMESTAMP:
            array = pa.array(values, pa.int64()).cast(arrow_type)
        case Kind.DATE:
            array = pa.array(values, pa.int32()).cast(arrow_type)
        case _:
            array = pa.array(values, arrow_type)
    return array, np.zeros(len(values), dtype=bool)


def decimals_from_unscaled_bytes(binary: pa.Array, arrow_type: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Avro ``decimal`` bytes (a binary array at offset 0) as a decimal array of ``arrow_type``
    (precision 18 or less), and a mask of the values that do not fit it.
    """
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
