"""Decimal columns as their unscaled 64-bit integers and back, for exact arithmetic in numpy.

K2's prices and quantities are ``decimal(18, 8)``: every value's unscaled integer fits 64 bits,
and Arrow stores it as the low word of a 128-bit two's-complement number. Reading those words
is free (no copy), and integer arithmetic on them is exact.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def units(values: pa.Array) -> np.ndarray:
    """The unscaled integers of a decimal128 array of precision 18 or less (arbitrary where a
    value is null).

    Raises:
        TypeError: for another type.
    """
    if not pa.types.is_decimal128(values.type) or values.type.precision > 18:
        raise TypeError(f"expected decimal128 of precision 18 or less, not {values.type}")
    words = np.frombuffer(values.buffers()[1], dtype="<i8")
    return words[2 * values.offset : 2 * (values.offset + len(values)) : 2]


def decimals(values: np.ndarray, kind: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """A decimal128 array of ``kind`` from unscaled 64-bit integers, null where not ``valid``."""
    words = np.empty((len(values), 2), dtype="<i8")
    words[:, 0] = values
    words[:, 1] = values >> 63
    if valid is None or valid.all():
        return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(words)])
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = int(len(valid) - np.count_nonzero(valid))
    return pa.Array.from_buffers(kind, len(values), [bitmap, pa.py_buffer(words)], null_count=nulls)


def valid(values: pa.Array) -> np.ndarray:
    """Which values of ``values`` are not null, as booleans."""
    if values.null_count == 0:
        return np.ones(len(values), dtype=bool)
    flags: np.ndarray = values.is_valid().to_numpy(zero_copy_only=False)
    return flags


def halve(total: np.ndarray) -> np.ndarray:
    """``total / 2`` rounded half to even, on integers."""
    half = total >> 1
    rounded: np.ndarray = half + (total & half & 1)
    return rounded
