"""Arrow columns as K2's JSON and CSV text, built a whole column at a time.

Each column is rendered as *pieces*: constant strings and Arrow string arrays which, concatenated
row by row, spell each row's JSON value. A table's rows are then one ``binary_join_element_wise``
over all the pieces, whose data buffer already is the comma-separated text. Such a join costs
about as much per piece and row whatever the piece's length, so keys, quotes and brackets go
between the arrays rather than into them, and a column holding one value throughout (an exchange,
a currency) is rendered once, into that constant text. No row is visited in Python, except
strings that need escaping, decimals beyond 64 bits, and values of types without a renderer here.

K2's rendering: decimals as exact strings without trailing fractional zeros (``"36.667"``,
``"20000"``, ``"-0.5"``, ``"0"``), times as ISO-8601 UTC always with microseconds
(``"2014-03-09T23:29:42.000000Z"``), dates as ``"YYYY-MM-DD"``, strings and numbers as orjson
writes them, lists as arrays, and maps and structs as objects. CSV carries the same text, unquoted.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any, TypeAlias

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

Piece: TypeAlias = "str | pa.Array"
Bytes: TypeAlias = np.ndarray[Any, np.dtype[np.uint8]]

_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_YEAR_1 = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z in microseconds since the epoch
_YEAR_10000 = 253_402_300_800_000_000
_DIGITS: Bytes = np.frombuffer("".join(f"{i:03}" for i in range(1000)).encode(), np.uint8).reshape(1000, 3)


def json_rows(table: pa.Table) -> memoryview:
    """The rows of ``table`` as JSON objects separated by commas, without surrounding brackets.

    Args:
        table: the rows, of any Arrow types (types without a renderer here are encoded per value).

    Returns:
        ``{"column":value,...},{...}``, keys in column order and no spaces; empty for no rows.
        The bytes are Arrow's, shared rather than copied.
    """
    if table.num_rows == 0:
        return memoryview(b"")
    columns = [_array(column) for column in table.columns]
    rows = _text([*_object(table.column_names, columns), ","], table.num_rows)
    offsets = _string_offsets(rows)
    return memoryview(rows.buffers()[2])[offsets[0] : offsets[-1] - 1]


def csv_columns(table: pa.Table) -> pa.Table:
    """``table`` with each column as CSV carries it: decimals, times and dates as their K2 text,
    lists, maps and structs as their JSON; other columns unchanged. Nulls stay null.
    """
    return pa.table([_csv(_array(column)) for column in table.columns], names=table.column_names)


def _array(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (combining chunks copies even one chunk)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _csv(values: pa.Array) -> pa.Array:
    kind = values.type
    if not (
        pa.types.is_decimal(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date(kind)
        or pa.types.is_nested(kind)
    ):
        return values
    if values.null_count == len(values):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_decimal(kind):
        return _joined(_decimal_text(values))
    if pa.types.is_timestamp(kind):
        return _joined([*_timestamp_text(values), "Z"])
    if pa.types.is_date(kind):
        return _date_text(values)
    return _joined(_render(values))


def _object(names: list[str], columns: list[pa.Array]) -> list[Piece]:
    """Pieces spelling JSON objects with one member per column."""
    pieces: list[Piece] = []
    for name, column in zip(names, columns, strict=True):
        pieces += [("," if pieces else "{") + orjson.dumps(name).decode() + ":", *_json(column)]
    return [*pieces, "}"] if pieces else ["{}"]


def _json(values: pa.Array) -> list[Piece]:
    """Pieces spelling each value's JSON; an array in them holds nulls only where a whole value
    is null (so a join replacing nulls with ``null`` completes it).
    """
    if values.null_count == len(values):
        return ["null"]
    if _constant(values):
        return [_text(_render(values.slice(0, 1)), 1)[0].as_py()]
    pieces = _render(values)
    return pieces if values.null_count == 0 else [_joined(pieces)]


def _constant(values: pa.Array) -> bool:
    """Whether ``values`` holds one non-null value throughout (such a column is rendered once)."""
    rows = len(values)
    if rows < 2 or values.null_count or not values[0] == values[rows // 2] == values[rows - 1]:
        return False
    kind = values.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind):
        lengths = np.diff(np.asarray(values.offsets))
        if lengths[0] > 1 or (lengths != lengths[0]).any():
            return False
        children = (values.keys, values.items) if pa.types.is_map(kind) else (values.values,)
        return lengths[0] == 0 or all(_constant(_children(values, child)) for child in children)
    if pa.types.is_nested(kind) or pa.types.is_dictionary(kind):
        return False
    try:
        return bool(pc.all(pc.equal(values, values[0])).as_py())
    except pa.ArrowNotImplementedError:
        return False


def _render(values: pa.Array) -> list[Piece]:
    """Pieces spelling each non-null value's JSON; where ``values`` is null some array is null."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        return [pc.take(_text(_json(values.dictionary), len(values.dictionary)), values.indices)]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _string(values.cast(pa.string()))
    if pa.types.is_boolean(kind):
        return [pc.if_else(values, "true", "false")]
    if pa.types.is_integer(kind):
        return [values.cast(pa.string())]
    if pa.types.is_floating(kind):
        return [_floats(values)]
    if pa.types.is_decimal(kind):
        return ['"', *_decimal_text(values), '"']
    if pa.types.is_timestamp(kind):
        return ['"', *_timestamp_text(values), 'Z"']
    if pa.types.is_date(kind):
        return ['"', _date_text(values), '"']
    if pa.types.is_map(kind):
        keys = _json(_children(values, values.keys))
        if pa.types.is_integer(kind.key_type) or pa.types.is_boolean(kind.key_type):
            keys = ['"', *keys, '"']  # object keys are strings: {"1":...}
        return _sequence(values, [*keys, ":", *_json(_children(values, values.items))], "{", "}")
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _sequence(values, _json(_children(values, values.values)), "[", "]")
    if pa.types.is_struct(kind):
        fields = _text(_object([field.name for field in kind], values.flatten()), len(values))
        return [fields if values.null_count == 0 else pc.if_else(values.is_valid(), fields, None)]
    return [_fallback(values)]


def _merged(pieces: list[Piece]) -> list[Piece]:
    """``pieces`` with neighbouring strings joined and empty ones left out."""
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif not isinstance(piece, str) or piece:
            merged.append(piece)
    return merged


def _joined(pieces: list[Piece]) -> pa.Array:
    """The pieces concatenated per row, null where one of them is null."""
    merged = _merged(pieces)
    if len(merged) == 1 and isinstance(merged[0], pa.Array):
        return merged[0]
    return pc.binary_join_element_wise(*merged, "")


def _text(pieces: list[Piece], rows: int) -> pa.Array:
    """The pieces concatenated per row, for ``rows`` rows, with ``null`` for a null in an array."""
    merged = _merged(pieces)
    arrays = [piece for piece in merged if not isinstance(piece, str)]
    if not arrays:
        return pa.repeat(pa.scalar("".join(map(str, merged))), rows)
    if len(merged) == 1:
        return arrays[0].fill_null("null")
    return pc.binary_join_element_wise(*merged, "", null_handling="replace", null_replacement="null")


def _children(values: pa.Array, children: pa.Array) -> pa.Array:
    """The part of a list (or map) array's ``children`` its lists hold (a slice holds fewer)."""
    offsets = values.offsets
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return children.slice(start, end - start)


def _sequence(values: pa.Array, children: list[Piece], opening: str, closing: str) -> list[Piece]:
    """Pieces spelling each list of ``values`` as its children's JSON, comma-separated between
    ``opening`` and ``closing``.
    """
    offsets = np.asarray(values.offsets)
    prefix, suffix = "", ""
    if len(children) > 2 and isinstance(children[0], str) and isinstance(children[-1], str):
        # '"a","b"' is the items joined by '","' between '"' and '"': no pass quoting each item.
        prefix, suffix, children = children[0], children[-1], children[1:-1]
    items = _text(children, int(offsets[-1] - offsets[0]))
    lists = (pa.LargeListArray if offsets.dtype == np.int64 else pa.ListArray).from_arrays(
        pa.array(offsets - offsets[0]), items, mask=values.is_null() if values.null_count else None
    )
    joined: list[Piece] = [opening + prefix, pc.binary_join(lists, suffix + "," + prefix), suffix + closing]
    if prefix or suffix:  # then an empty list is not '[' + '' + ']'
        empty = (np.diff(offsets) == 0) & values.is_valid().to_numpy(zero_copy_only=False)
        if empty.any():
            return [pc.if_else(pa.array(empty), opening + closing, _joined(joined))]
    return joined


def _string(values: pa.Array) -> list[Piece]:
    """Pieces spelling JSON strings: quotes around, and escapes as orjson writes them."""
    offsets = _string_offsets(values)
    data = np.frombuffer(values.buffers()[2] or b"", np.uint8)[offsets[0] : offsets[-1]]
    if not len(data) or (
        data.min() >= 0x20 and not (data == ord('"')).any() and not (data == ord("\\")).any()
    ):
        return ['"', values, '"']
    escape = pc.fill_null(pc.match_substring_regex(values, r'[\x00-\x1f"\\]'), False)
    escaped = [orjson.dumps(value).decode() for value in values.filter(escape).to_pylist()]
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    return [pc.replace_with_mask(quoted, escape, pa.array(escaped, pa.string()))]


def _floats(values: pa.Array) -> pa.Array:
    """Each number as orjson writes it (non-finite ones as ``null``), written by orjson at once."""
    numbers = values.cast(pa.float64()).fill_null(0).to_numpy()
    text = np.frombuffer(orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY), np.uint8)[1:-1]
    comma = text == ord(",")
    ends = np.flatnonzero(np.append(comma, True))
    return _strings(text[~comma], np.concatenate([[0], ends - np.arange(len(ends))]), _validity(values))


def _decimal_text(values: pa.Array) -> list[Piece]:
    """Pieces spelling each decimal exactly, without trailing fractional zeros: the integral part
    (36, 20000, -0, 0) and the fraction (.667, or nothing).
    """
    scale = values.type.scale
    unscaled, exact = _unscaled(values)
    one = 10 ** min(max(scale, 0), 18)  # larger scales are written exactly, in Python
    whole, fraction = np.divmod(np.abs(unscaled), one)
    negative = unscaled < 0
    signed = pa.Array.from_buffers(
        pa.int64(), len(values), [_validity(values), pa.py_buffer(np.where(negative, -whole, whole))]
    )
    integral = signed.cast(pa.string())
    minus_zero = negative & (whole == 0)
    if minus_zero.any():  # -0.5: the integral part keeps its sign
        integral = pc.if_else(pa.array(minus_zero), "-0", integral)
    if exact.any():
        text = [_decimal_str(value) for value in values.filter(pa.array(exact)).to_pylist()]
        integral = pc.replace_with_mask(integral, pa.array(exact), pa.array(text, pa.string()))
    if scale <= 0:
        return [integral]
    # 10**8 + 66700000 is "166700000"; with its 1 made a dot, and trailing zeros and a dot trimmed,
    # ".667" (or "" for no fraction).
    width = len(str(one))
    digits = pa.array(fraction + one).cast(pa.string())
    characters = np.frombuffer(digits.buffers()[2], np.uint8).reshape(-1, width).copy()
    characters[:, 0] = ord(".")
    return [integral, pc.utf8_rtrim(_strings(characters, _steps(len(values), width), None), "0.")]


def _unscaled(values: pa.Array) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, Any]]:
    """Each decimal's unscaled value as an int64, and which values are to be written exactly in
    Python instead (too large for the int64 or its digits; their int64 is 0).
    """
    kind, rows = values.type, len(values)
    size = kind.byte_width
    raw = np.frombuffer(values.buffers()[1], np.uint8, rows * size, values.offset * size)
    words = raw.view(f"<i{min(size, 8)}").reshape(rows, -1)
    low = words[:, 0].astype(np.int64)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    if not 0 <= kind.scale <= 18:
        exact = valid
    else:
        exact = valid & ((words[:, 1:] != (low >> 63)[:, None]).any(axis=1) | (low == np.iinfo(np.int64).min))
    return np.where(exact | ~valid, 0, low), exact


def _decimal_str(value: Decimal) -> str:
    """A decimal's exact digits without trailing fractional zeros."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _timestamp_text(values: pa.Array) -> list[Piece]:
    """Pieces spelling ``YYYY-MM-DDTHH:MM:SS.ffffff``: every time the same width, so times compare
    and sort as text.
    """
    ticks = values.view(pa.int64()).fill_null(0).to_numpy()
    unit = values.type.unit
    micros = ticks // 1_000 if unit == "ns" else ticks * _MICROS[unit]
    rows = len(micros)
    if micros.min() < _YEAR_1 or micros.max() >= _YEAR_10000:  # years of other than four digits
        naive = pa.Array.from_buffers(pa.timestamp("us"), rows, [_validity(values), pa.py_buffer(micros)])
        return [pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)]
    seconds, fraction = np.divmod(micros, 1_000_000)
    days, clock = np.divmod(seconds, 86_400)
    text = np.empty((rows, 26), np.uint8)
    text[:, :10] = _calendar(days)
    text[:, 10] = ord("T")
    text[:, 11:19] = np.take(_clock(), clock, axis=0)
    text[:, 19] = ord(".")
    text[:, 20:23] = np.take(_DIGITS, fraction // 1000, axis=0)
    text[:, 23:] = np.take(_DIGITS, fraction % 1000, axis=0)
    return [_strings(text, _steps(rows, 26), _validity(values))]


def _calendar(days: np.ndarray[Any, Any]) -> Bytes:
    """``YYYY-MM-DD`` of each day since the epoch (years 1 to 9999), one row of bytes each."""
    first, last = int(days.min()), int(days.max())
    span = last - first < len(days)  # then each day of the span is written once
    wanted = np.arange(first, last + 1, dtype=np.int32) if span else days.astype(np.int32)
    text = pa.array(wanted, pa.date32()).cast(pa.string())
    dates = np.frombuffer(text.buffers()[2], np.uint8).reshape(-1, 10)
    return np.take(dates, days - first, axis=0) if span else dates


@functools.cache
def _clock() -> Bytes:
    """``HH:MM:SS`` of each second of a day, one row of bytes each."""
    text = pa.array(np.arange(86_400, dtype=np.int32), pa.time32("s")).cast(pa.string())
    return np.frombuffer(text.buffers()[2], np.uint8).reshape(86_400, 8)


def _date_text(values: pa.Array) -> pa.Array:
    return values.cast(pa.date32()).cast(pa.string())


def _string_offsets(values: pa.Array) -> np.ndarray[Any, np.dtype[np.int32]]:
    """Where each value of a string array starts in its data buffer, and where the last ends."""
    return np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)


def _steps(rows: int, width: int) -> np.ndarray[Any, Any]:
    return np.arange(0, (rows + 1) * width, width)


def _validity(values: pa.Array) -> pa.Buffer | None:
    """A validity bitmap for a new array as long as ``values``; None when nothing is null."""
    return values.is_valid().buffers()[1] if values.null_count else None


def _strings(
    data: np.ndarray[Any, Any], offsets: np.ndarray[Any, Any], validity: pa.Buffer | None
) -> pa.Array:
    """A string array of ``data``'s bytes cut at ``offsets``."""
    buffers = [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data))]
    return pa.Array.from_buffers(pa.string(), len(offsets) - 1, buffers)


def _default(value: Any) -> Any:
    return _decimal_str(value) if isinstance(value, Decimal) else str(value)


def _fallback(values: pa.Array) -> pa.Array:
    """Each value encoded by orjson, one at a time: for types without a column-wise rendering."""
    option = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    encoded = [
        None if value is None else orjson.dumps(value, default=_default, option=option).decode()
        for value in values.to_pylist()
    ]
    return pa.array(encoded, pa.string())
