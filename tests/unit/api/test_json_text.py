"""The JSON and CSV text of Arrow tables is, byte for byte, a plain Python rendering of the same
rows (the functions below are the specification), for every type K2 renders column-wise.
"""

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.api.json_text import csv_columns, json_rows
from k2.testing.factories import make_trade_rows, trade_row

YEAR_1 = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z in microseconds since the epoch
YEAR_10000 = 253_402_300_800_000_000
DAY = 86_400_000_000


def decimal_text(value: Decimal) -> str:
    """The exact digits without trailing fractional zeros (or a trailing dot)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def time_text(value: datetime) -> str:
    """ISO-8601 UTC, always with microseconds; naive times are UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def json_value(value: Any, kind: pa.DataType) -> str:
    """K2's JSON of one value as ``to_pylist`` gives it, of Arrow type ``kind``."""
    if value is None:
        return "null"
    if pa.types.is_dictionary(kind):
        return json_value(value, kind.value_type)
    if pa.types.is_decimal(kind):
        return f'"{decimal_text(value)}"'
    if pa.types.is_timestamp(kind):
        return f'"{time_text(value)}"'
    if pa.types.is_date(kind):
        return f'"{value.isoformat()}"'
    if pa.types.is_map(kind):
        entries = []
        for key, item in value:
            name = json_value(key, kind.key_type)
            entries.append(
                (name if name.startswith('"') else f'"{name}"') + ":" + json_value(item, kind.item_type)
            )
        return "{" + ",".join(entries) + "}"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "[" + ",".join(json_value(item, kind.value_type) for item in value) + "]"
    if pa.types.is_struct(kind):
        members = (orjson.dumps(f.name).decode() + ":" + json_value(value[f.name], f.type) for f in kind)
        return "{" + ",".join(members) + "}"
    return orjson.dumps(value).decode()  # strings, integers, floats and booleans as orjson writes them


def reference_rows(table: pa.Table) -> bytes:
    names = [orjson.dumps(name).decode() for name in table.column_names]
    kinds = [column.type for column in table.columns]
    rows = zip(*(column.to_pylist() for column in table.columns), strict=True)
    objects = (
        "{" + ",".join(f"{n}:{json_value(v, k)}" for n, k, v in zip(names, kinds, row, strict=True)) + "}"
        for row in rows
    )
    return ",".join(objects).encode()


def csv_value(value: Any, kind: pa.DataType) -> Any:
    """What CSV carries for a value of a decimal, time, date or nested type: K2's text, or JSON."""
    if value is None:
        return None
    if pa.types.is_decimal(kind):
        return decimal_text(value)
    if pa.types.is_timestamp(kind):
        return time_text(value)
    if pa.types.is_date(kind):
        return value.isoformat()
    return json_value(value, kind)


def same(value: Any, other: Any) -> bool:
    """Equal, or both NaN."""
    nans = isinstance(value, float) and isinstance(other, float) and math.isnan(value) and math.isnan(other)
    return bool(value == other or nans)


# Strings with what JSON escapes (quotes, backslashes, control characters) and what it does not.
TEXT = st.text(max_size=8) | st.text(
    st.sampled_from(list('"\\\n\r\t\b\f\x00\x1f\x7f/aé😀\u2028')), max_size=8
)
PRICE = pa.decimal128(18, 8)


def decimals(kind: pa.DataType) -> st.SearchStrategy[Decimal]:
    """Any value of the decimal type, built exactly from its unscaled integer."""
    largest = 10**kind.precision - 1
    return st.integers(-largest, largest).map(lambda unscaled: Decimal(f"{unscaled}E{-kind.scale}"))


def ticks(unit: str) -> st.SearchStrategy[int]:
    """Times in ``unit`` since the epoch, a day inside years 1 to 9999 (so Python has their local
    times), often on a whole second.
    """
    if unit == "ns":  # whole microseconds: Python's datetime has no nanoseconds (see the flooring test)
        edge = (2**63 - DAY * 1_000) // 1_000
        return st.integers(-edge, edge).map(lambda us: us * 1_000) | st.integers(-(2**33), 2**33).map(
            lambda s: s * 10**9
        )
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
    first, last = (YEAR_1 + DAY) // 10**6, (YEAR_10000 - DAY) // 10**6
    return st.integers(first, last).map(lambda s: s * per_second) | st.integers(
        first * per_second, last * per_second
    )


def columns() -> st.SearchStrategy[tuple[pa.DataType, st.SearchStrategy[Any]]]:
    """An Arrow type and the values (as ``pa.array`` takes them) of a nullable column of it."""
    strings = pa.list_(pa.field("element", pa.string(), nullable=False))
    string_map = pa.map_(pa.string(), pa.field("value", pa.string(), nullable=False))
    scalars: list[tuple[pa.DataType, st.SearchStrategy[Any]]] = [
        (pa.string(), TEXT),
        (pa.large_string(), TEXT),
        (pa.string_view(), TEXT),
        (pa.bool_(), st.booleans()),
        *(
            (t, st.integers(-(2 ** (t.bit_width - 1)), 2 ** (t.bit_width - 1) - 1))
            for t in _ints(signed=True)
        ),
        *((t, st.integers(0, 2**t.bit_width - 1)) for t in _ints(signed=False)),
        (pa.float64(), st.floats()),
        (pa.float32(), st.floats(width=32)),
        *(
            (t, decimals(t))
            for t in (
                PRICE,
                pa.decimal128(38, 8),
                pa.decimal128(38, 0),
                pa.decimal128(38, 38),
                pa.decimal128(5, 2),
                pa.decimal128(5, -2),
                pa.decimal32(9, 3),
                pa.decimal64(18, 18),
                pa.decimal256(50, 20),
            )
        ),
        *(
            (pa.timestamp(unit, tz), ticks(unit))
            for unit in ("s", "ms", "us", "ns")
            for tz in (None, "UTC", "Australia/Sydney")
        ),
        (pa.date32(), st.integers(YEAR_1 // DAY, YEAR_10000 // DAY - 1)),
    ]
    nested: list[tuple[pa.DataType, st.SearchStrategy[Any]]] = [
        (strings, st.lists(TEXT, max_size=3)),
        (pa.large_list(pa.int64()), st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=3)),
        (pa.list_(PRICE), st.lists(st.none() | decimals(PRICE), max_size=3)),
        (pa.list_(pa.timestamp("us", "UTC")), st.lists(ticks("us"), max_size=3)),
        (pa.list_(strings), st.lists(st.lists(TEXT, max_size=2), max_size=2)),
        (string_map, st.dictionaries(TEXT, TEXT, max_size=3).map(lambda d: list(d.items()))),
        (
            pa.map_(pa.string(), pa.int64()),
            st.dictionaries(TEXT, st.none() | st.integers(-(2**63), 2**63 - 1), max_size=2).map(
                lambda d: list(d.items())
            ),
        ),
        (
            pa.map_(pa.int32(), pa.string()),
            st.dictionaries(st.integers(-(2**31), 2**31 - 1), TEXT, max_size=2).map(
                lambda d: list(d.items())
            ),
        ),
        (
            pa.struct([("a", pa.int64()), ('b "\\', pa.string()), ("c", strings), ("d", PRICE)]),
            st.fixed_dictionaries(
                {
                    "a": st.none() | st.integers(-10, 10),
                    'b "\\': st.none() | TEXT,
                    "c": st.none() | st.lists(TEXT, max_size=2),
                    "d": st.none() | decimals(PRICE),
                }
            ),
        ),
    ]
    return st.sampled_from([*scalars, *nested])


def _ints(*, signed: bool) -> list[pa.DataType]:
    if signed:
        return [pa.int8(), pa.int16(), pa.int32(), pa.int64()]
    return [pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()]


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    """Tables of any columns, sometimes of one value throughout, in chunks, and sliced."""
    rows = draw(st.integers(0, 12))
    names = draw(
        st.lists(
            TEXT | st.sampled_from(["", "price", 'a"b', "a\\b", "\n"]), min_size=1, max_size=6, unique=True
        )
    )
    arrays = []
    for _ in names:
        kind, values = draw(columns())
        nullable = st.none() | values
        listed = draw(st.lists(nullable, min_size=rows, max_size=rows) | nullable.map(lambda v: [v] * rows))
        array = pa.array(listed, kind)
        arrays.append(
            array.dictionary_encode() if pa.types.is_string(kind) and draw(st.booleans()) else array
        )
    table = pa.Table.from_arrays(arrays, names=names)
    split = draw(st.integers(0, rows))
    table = pa.concat_tables([table.slice(0, split), table.slice(split)])
    start = draw(st.integers(0, rows))
    return table.slice(start, draw(st.integers(0, rows - start)))


@settings(max_examples=400, database=None)
@given(table=tables())
def test_json_rows_are_the_reference_rendering(table: pa.Table) -> None:
    """Byte for byte the reference, and JSON that reads back to itself."""
    text = bytes(json_rows(table))
    assert text == reference_rows(table)
    document = b"[" + text + b"]"
    assert orjson.dumps(orjson.loads(document)) == document
    assert len(orjson.loads(document)) == table.num_rows


@settings(max_examples=200, database=None)
@given(table=tables())
def test_csv_columns_carry_the_reference_text(table: pa.Table) -> None:
    """Decimals, times, dates and nested values as text; other columns as they were."""
    flat = csv_columns(table)
    assert flat.column_names == table.column_names
    for column, original in zip(flat.columns, table.columns, strict=True):
        kind = original.type
        if pa.types.is_decimal(kind) or pa.types.is_temporal(kind) or pa.types.is_nested(kind):
            assert column.to_pylist() == [csv_value(value, kind) for value in original.to_pylist()]
        else:
            assert column.type == original.type
            assert all(map(same, column.to_pylist(), original.to_pylist()))


def test_a_trade_reads_as_k2_json() -> None:
    row = trade_row(
        "KDM",
        datetime(2024, 1, 8, 0, 0, 0, 298000, tzinfo=UTC),
        "42.09000000",
        "67",
        sequence=16804,
        message_id="c4d9",
        trade_conditions=["0"],
        vendor_data=[("company_id", "9012")],
    )
    table = make_trade_rows(
        [row, {**row, "price": Decimal("-0.5"), "quantity": Decimal(0), "trade_conditions": []}]
    )
    picked = table.select(["message_id", "symbol", "timestamp", "price", "quantity", "trade_conditions"])
    last = table.select(["source_sequence", "platform_sequence", "vendor_data"])
    assert bytes(json_rows(picked)) == (
        b'{"message_id":"c4d9","symbol":"KDM","timestamp":"2024-01-08T00:00:00.298000Z",'
        b'"price":"42.09","quantity":"67","trade_conditions":["0"]},'
        b'{"message_id":"c4d9","symbol":"KDM","timestamp":"2024-01-08T00:00:00.298000Z",'
        b'"price":"-0.5","quantity":"0","trade_conditions":[]}'
    )
    assert (
        bytes(json_rows(last.slice(1)))
        == b'{"source_sequence":16804,"platform_sequence":null,"vendor_data":{"company_id":"9012"}}'
    )
    assert bytes(json_rows(table.slice(0, 0))) == b""


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        (
            pa.timestamp("ns", "UTC"),
            [-1, 1_000],
            ['"1969-12-31T23:59:59.999999Z"', '"1970-01-01T00:00:00.000001Z"'],
        ),
        (
            pa.timestamp("us"),
            [YEAR_10000 + 1_500_000, YEAR_10000],
            ['"10000-01-01T00:00:01.500000Z"', '"10000-01-01T00:00:00.000000Z"'],
        ),
        (pa.time64("us"), [1_000_000], ['"00:00:01"']),
        (pa.duration("s"), [90], ['"0:01:30"']),
    ],
)
def test_values_beyond_python_and_types_without_a_renderer(
    kind: pa.DataType, values: list[int], expected: list[str]
) -> None:
    """Times beyond year 9999 keep their digits; other types are encoded value by value."""
    text = json_rows(pa.table({"x": pa.array([*values, None], kind)}))
    assert bytes(text) == ",".join(f'{{"x":{value}}}' for value in [*expected, "null"]).encode()
