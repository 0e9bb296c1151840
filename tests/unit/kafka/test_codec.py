import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.errors import InvalidInputError, NotFoundError, RetryableError
from k2.kafka.avro.codec import HEADER, RecordCodec
from k2.kafka.avro.encoding import encode_table
from k2.schemas import QUOTE, RECORDS, TRADE, Column, Kind, Record
from k2.testing.factories import make_trade_rows, trade_row

SCHEMA_ID = 42
LARGEST = Decimal("9999999999.99999999")
DECIMALS = st.decimals(min_value=-LARGEST, max_value=LARGEST, places=8, allow_nan=False, allow_infinity=False)
TIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999), timezones=st.just(UTC)
)
TEXT = st.text(max_size=12)
QUOTE_ROW: dict[str, Any] = {
    "message_id": "m",
    "quote_id": "ASX-BHP-20140310-1",
    "symbol": "BHP",
    "exchange": "ASX",
    "asset_class": "equities",
    "timestamp": datetime(2014, 3, 9, 23, 0, 0, 123456, tzinfo=UTC),
    "bid_price": Decimal("36.66"),
    "bid_quantity": Decimal(300),
    "ask_price": None,
    "ask_quantity": Decimal(0),
    "currency": "AUD",
    "source_sequence": 1,
    "ingestion_timestamp": datetime(2026, 1, 1, tzinfo=UTC),
    "platform_sequence": None,
    "vendor_data": [("company_id", "7078")],
}


def _values(column: Column) -> st.SearchStrategy[Any]:
    strategy: st.SearchStrategy[Any]
    match column.kind:
        case Kind.STRING:
            strategy = TEXT
        case Kind.ENUM:
            strategy = st.sampled_from(column.symbols)
        case Kind.LONG:
            strategy = st.integers(-(2**63), 2**63 - 1)
        case Kind.BOOLEAN:
            strategy = st.booleans()
        case Kind.DECIMAL:
            strategy = DECIMALS
        case Kind.TIMESTAMP:
            strategy = TIMES
        case Kind.DATE:
            strategy = st.dates()
        case Kind.STRING_LIST:
            strategy = st.lists(TEXT, max_size=3)
        case Kind.STRING_MAP:
            strategy = st.dictionaries(TEXT, TEXT, max_size=3)
    return strategy if column.required else st.none() | strategy


def tables(record: Record) -> st.SearchStrategy[pa.Table]:
    """Arrow tables in the record's schema with any values its types allow."""
    row = st.fixed_dictionaries({c.name: _values(c) for c in record.columns})
    return st.lists(row, max_size=12).map(
        lambda rows: pa.Table.from_pylist(rows, schema=record.arrow_schema())
    )


def lookup(schemas: dict[int, dict[str, Any]]) -> Any:
    def schema_for(schema_id: int) -> dict[str, Any]:
        try:
            return schemas[schema_id]
        except KeyError:
            raise NotFoundError(f"no schema {schema_id}") from None

    return schema_for


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_is_exact(record: Record, data: st.DataObject) -> None:
    """Any rows decode to exactly the rows encoded: same decimals, same microseconds, same nulls."""
    table = data.draw(tables(record))
    codec = RecordCodec(record)
    values = codec.encode(table, SCHEMA_ID)
    decoded = codec.decode(values, lookup({SCHEMA_ID: codec.schema}))
    assert decoded.errors == []
    assert decoded.rows.schema == record.arrow_schema()
    assert decoded.rows.equals(table)
    assert decoded.rows.to_pylist() == table.to_pylist()
    assert codec.encode(table.slice(1), SCHEMA_ID) == values[1:]


@pytest.mark.parametrize("record", list(RECORDS.values()), ids=lambda r: r.name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_values_are_what_fastavro_writes_from_python_objects(record: Record, data: st.DataObject) -> None:
    """Both encoders (row by row for a few rows, a column at a time for many) write the bytes
    fastavro writes for Decimal, datetime and date values with the logical types, after the
    Confluent header, so any Confluent client reads them; also for a slice, whose Arrow buffers
    start at an offset.
    """
    table = data.draw(tables(record))
    codec = RecordCodec(record)
    parsed = fastavro.parse_schema(codec.schema)
    maps = [c.name for c in record.columns if c.kind is Kind.STRING_MAP]
    expected = []
    for row in table.to_pylist():
        for name in maps:
            if row[name] is not None:
                row[name] = dict(row[name])
        buffer = io.BytesIO()
        buffer.write(bytes([0]) + SCHEMA_ID.to_bytes(4, "big"))
        fastavro.schemaless_writer(buffer, parsed, row)
        expected.append(buffer.getvalue())
    assert codec.encode(table, SCHEMA_ID) == expected
    header = HEADER.pack(0, SCHEMA_ID)
    assert encode_table(record.columns, table, header) == expected
    assert encode_table(record.columns, table.slice(1, 5), header) == expected[1:6]


@pytest.mark.parametrize("record", [TRADE, QUOTE], ids=lambda r: r.name)
@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    damage=st.lists(
        st.tuples(
            st.integers(0, 11),
            st.sampled_from(["flip", "cut", "extend"]),
            st.integers(0, 200),
            st.binary(min_size=1, max_size=8),
        ),
        max_size=3,
    ),
)
def test_a_batch_read_at_once_reads_as_fastavro_reads_it_value_by_value(
    record: Record, data: st.DataObject, damage: list[tuple[int, str, int, bytes]]
) -> None:
    """Values of the record's own schema are read a field at a time; whatever they hold (here:
    bodies with bytes changed, cut short or extended), the outcome is fastavro's, value by value.
    A None in the batch makes the codec read value by value: that is the reference."""
    table = data.draw(tables(record).filter(lambda t: t.num_rows > 0))
    codec = RecordCodec(record)
    values = codec.encode(table, SCHEMA_ID)
    for which, how, where, noise in damage:
        index = which % len(values)
        value = values[index]
        at = HEADER.size + where % max(1, len(value) - HEADER.size)
        if how == "flip":
            value = (
                value[:at]
                + bytes(a ^ b for a, b in zip(value[at:], noise, strict=False))
                + value[at + len(noise) :]
            )
        elif how == "cut":
            value = value[:at]
        else:
            value += noise
        values[index] = value
    schemas = lookup({SCHEMA_ID: codec.schema})
    at_once = RecordCodec(record).decode(values, schemas)
    one_by_one = RecordCodec(record).decode([*values, None], schemas)
    assert one_by_one.errors[-1][0] == len(values)
    assert at_once.errors == one_by_one.errors[:-1]
    assert at_once.rows.equals(one_by_one.rows)


@settings(max_examples=400, deadline=None)
@given(
    schema_id=st.sampled_from([SCHEMA_ID, 7]),
    noise=st.binary(max_size=160),
    cut=st.integers(min_value=0, max_value=160),
)
def test_any_bytes_decode_or_are_reported_and_never_raise(schema_id: int, noise: bytes, cut: int) -> None:
    """Random bodies, valid messages with bytes flipped, and cut-off messages each come out as a
    row or as an error, read as v2 or resolved from a later writer schema."""
    codec = RecordCodec(QUOTE)
    later = {**codec.schema, "fields": [*codec.schema["fields"], {"name": "x", "type": ["null", "long"]}]}
    good = codec.encode(pa.Table.from_pylist([QUOTE_ROW], schema=QUOTE.arrow_schema()), schema_id)[0]
    flipped = good[:5] + bytes(a ^ b for a, b in zip(good[5:], noise.ljust(len(good), b"\0"), strict=False))
    values: list[bytes | None] = [HEADER.pack(0, schema_id) + noise, flipped, good[:cut]]
    decoded = codec.decode(values, lookup({SCHEMA_ID: codec.schema, 7: later}))
    assert decoded.rows.num_rows + len(decoded.errors) == len(values)


def test_header_is_magic_byte_and_big_endian_schema_id() -> None:
    values = RecordCodec(TRADE).encode(make_trade_rows([trade_row()]), 0x01020304)
    assert values[0][:5] == b"\x00\x01\x02\x03\x04"


def test_bad_values_are_reported_by_index_and_good_ones_kept_in_order() -> None:
    """One bad message never fails the batch: each is listed with its reason."""
    codec = RecordCodec(TRADE)
    rows = make_trade_rows([trade_row(sequence=i) for i in range(1, 4)])
    good = codec.encode(rows, SCHEMA_ID)
    values: list[bytes | None] = [
        good[0],
        None,
        b"\x00\x00",
        b"\x01" + good[1][1:],
        HEADER.pack(0, 999) + good[1][5:],
        good[1][:-3],
        good[1] + b"\x00",
        good[2],
    ]
    decoded = codec.decode(values, lookup({SCHEMA_ID: codec.schema}))
    assert [index for index, _ in decoded.errors] == [1, 2, 3, 4, 5, 6]
    reasons = dict(decoded.errors)
    assert "no header" in reasons[1]
    assert "no header" in reasons[2]
    assert "magic byte 1" in reasons[3]
    assert "unknown schema id 999" in reasons[4]
    assert "does not decode" in reasons[5]
    assert "1 bytes left" in reasons[6]
    assert decoded.rows.column("source_sequence").to_pylist() == [1, 3]


def _written(schema: dict[str, Any], schema_id: int, rows: list[dict[str, Any]]) -> list[bytes]:
    """Values as any Avro client writes them with ``schema`` (Python objects, logical types)."""
    parsed = fastavro.parse_schema(schema)
    values = []
    for row in rows:
        buffer = io.BytesIO()
        buffer.write(HEADER.pack(0, schema_id))
        fastavro.schemaless_writer(buffer, parsed, row)
        values.append(buffer.getvalue())
    return values


def _with_fields(schema: dict[str, Any], *fields: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "fields": [*schema["fields"], *fields]}


def test_a_field_a_later_writer_adds_becomes_an_optional_column() -> None:
    """Schema resolution keeps a v3 writer's extra optional field as a column after the record's;
    v2 rows in the same call are null there. A call with v2 values only has the v2 schema."""
    codec = RecordCodec(TRADE)
    v3 = _with_fields(codec.schema, {"name": "venue", "type": ["null", "string"], "default": None})
    row = trade_row(price=Decimal("36.667"), trade_conditions=["3"], vendor_data=[("buyer_id", "36.79")])
    rows = make_trade_rows([row])
    python_row = rows.to_pylist()[0] | {"vendor_data": {"buyer_id": "36.79"}, "venue": "X"}
    schemas = lookup({SCHEMA_ID: codec.schema, 7: v3})
    decoded = codec.decode([*_written(v3, 7, [python_row]), *codec.encode(rows, SCHEMA_ID)], schemas)
    assert decoded.errors == []
    assert decoded.rows.schema == TRADE.arrow_schema().append(pa.field("venue", pa.string()))
    assert decoded.rows.drop_columns(["venue"]).to_pylist() == rows.to_pylist() * 2
    assert decoded.rows["venue"].to_pylist() == ["X", None]
    assert codec.decode(codec.encode(rows, SCHEMA_ID), schemas).rows.schema == TRADE.arrow_schema()


ADDED = tuple(
    Column(
        f"added_{kind.value}",
        kind,
        f"An added {kind.value}.",
        required=False,
        symbols=("LIT", "DARK") if kind is Kind.ENUM else (),
        enum_name="Venue" if kind is Kind.ENUM else "",
    )
    for kind in Kind
)
QUOTE_V3 = Record("Quote", 3, QUOTE.doc, (*QUOTE.columns, *ADDED))


@settings(max_examples=40, deadline=None)
@given(table=tables(QUOTE_V3).filter(lambda t: t.num_rows > 0))
def test_added_fields_of_every_kind_round_trip(table: pa.Table) -> None:
    """A v3 writer adding an optional field of each kind K2 columns hold decodes to exactly the
    rows it wrote, the added columns typed as the record declaration would type them. (A call
    whose values carry no added field has no added column.)"""
    rows = table.to_pylist()
    for row in rows:
        for name in ("vendor_data", "added_string_map"):
            row[name] = None if row[name] is None else dict(row[name])
    decoded = RecordCodec(QUOTE).decode(
        _written(QUOTE_V3.avro_schema(), 3, rows), lookup({3: QUOTE_V3.avro_schema()})
    )
    assert decoded.errors == []
    assert decoded.rows.equals(table)


def test_columns_are_offered_once_per_writer_and_a_refusal_fails_its_messages() -> None:
    """``accept_columns`` sees each adding writer's columns once (the sink evolves its table
    there); the messages of a writer it refuses are errors with its reason, the rest decode."""
    offered: list[tuple[Column, ...]] = []

    def accept(columns: tuple[Column, ...]) -> str | None:
        offered.append(columns)
        return "the table says no" if columns[0].name == "refused" else None

    codec = RecordCodec(TRADE, accept_columns=accept)
    taken = _with_fields(codec.schema, {"name": "taken", "type": ["null", "long"], "default": None})
    refused = _with_fields(codec.schema, {"name": "refused", "type": ["null", "long"], "default": None})
    row = make_trade_rows([trade_row()]).to_pylist()[0]
    values = [
        *_written(taken, 7, [row | {"taken": 1}]),
        *_written(refused, 8, [row | {"refused": 2}]),
        *codec.encode(make_trade_rows([trade_row()]), SCHEMA_ID),
    ]
    schemas = lookup({SCHEMA_ID: codec.schema, 7: taken, 8: refused})
    decoded = codec.decode(values * 2, schemas)
    assert [c.name for columns in offered for c in columns] == ["taken", "refused"]
    assert decoded.errors == [(1, "schema 8: the table says no"), (4, "schema 8: the table says no")]
    assert decoded.rows["taken"].to_pylist() == [1, None, 1, None]
    assert decoded.rows.schema.field("taken").nullable
    codec.decode(values, schemas)
    assert len(offered) == 3  # the refused writer is asked again in a later call; the taken one is not


@pytest.mark.parametrize(
    ("avro_type", "shown"),
    [
        (["null", "double"], '["null","double"]'),
        (["null", {"type": "long", "logicalType": "timestamp-millis"}], "timestamp-millis"),
        (["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}], '"scale":2'),
        (["null", "string", "long"], '["null","string","long"]'),
        (["null", {"type": "array", "items": "long"}], '"items":"long"'),
    ],
    ids=["double", "millis", "other-scale", "two-types", "long-list"],
)
def test_an_added_field_no_column_holds_fails_its_writer(avro_type: Any, shown: str) -> None:
    codec = RecordCodec(TRADE)
    later = _with_fields(codec.schema, {"name": "odd", "type": avro_type, "default": None})
    good = codec.encode(make_trade_rows([trade_row()]), SCHEMA_ID)
    decoded = codec.decode(
        [HEADER.pack(0, 5) + good[0][5:], *good], lookup({SCHEMA_ID: codec.schema, 5: later})
    )
    assert [index for index, _ in decoded.errors] == [0]
    assert decoded.errors[0][1].startswith("schema 5 adds field odd of type")
    assert shown in decoded.errors[0][1]
    assert "which no K2 column holds" in decoded.errors[0][1]
    assert decoded.rows.schema == TRADE.arrow_schema()


def test_writers_adding_one_name_with_two_types_are_not_both_taken() -> None:
    codec = RecordCodec(TRADE)
    as_long = _with_fields(codec.schema, {"name": "extra", "type": ["null", "long"], "default": None})
    as_text = _with_fields(codec.schema, {"name": "extra", "type": ["null", "string"], "default": None})
    row = make_trade_rows([trade_row()]).to_pylist()[0]
    values = [*_written(as_long, 1, [row | {"extra": 5}]), *_written(as_text, 2, [row | {"extra": "5"}])]
    decoded = codec.decode(values, lookup({1: as_long, 2: as_text}))
    assert decoded.errors == [(1, "schema 2 adds field extra as string, an earlier schema added it as int64")]
    assert decoded.rows["extra"].to_pylist() == [5]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: None if f["name"] == "trade_id" else f, "drops required field trade_id"),
        (lambda f: {**f, "type": "long"} if f["name"] == "trade_id" else f, 'writes trade_id as "long"'),
        (
            lambda f: {**f, "type": ["null", "string"]} if f["name"] == "trade_id" else f,
            'writes trade_id as ["null","string"]',
        ),
        (
            lambda f: {"name": f["name"], "type": "string"} if f["name"] == "source_sequence" else f,
            "writes source_sequence",
        ),
    ],
    ids=["dropped", "retyped", "made-optional", "optional-retyped"],
)
def test_a_writer_that_drops_or_retypes_a_record_field_fails_its_messages(change: Any, reason: str) -> None:
    """Nothing a later writer does may drop or retype a column: its messages are refused with the
    field, before any is read (Avro would read some of them as garbage)."""
    codec = RecordCodec(TRADE)
    changed = {**codec.schema, "fields": [f for f in map(change, codec.schema["fields"]) if f is not None]}
    good = codec.encode(make_trade_rows([trade_row()]), SCHEMA_ID)
    decoded = codec.decode(
        [HEADER.pack(0, 6) + good[0][5:], *good], lookup({SCHEMA_ID: codec.schema, 6: changed})
    )
    assert [index for index, _ in decoded.errors] == [0]
    assert decoded.errors[0][1] == f"schema 6 {reason}" + decoded.errors[0][1].removeprefix(
        f"schema 6 {reason}"
    )
    assert decoded.errors[0][1].startswith(f"schema 6 {reason}")
    assert decoded.errors[0][1].endswith("which the Trade record cannot read")


def test_compatible_changes_to_record_fields_are_read() -> None:
    """Dropping an optional field, promoting int to long, a required field written as optional by
    the record but required by the writer: all resolve."""
    codec = RecordCodec(TRADE)

    def change(field: dict[str, Any]) -> dict[str, Any] | None:
        if field["name"] == "platform_sequence":
            return None
        if field["name"] == "source_sequence":
            return {"name": field["name"], "type": "int"}
        return field

    changed = {**codec.schema, "fields": [f for f in map(change, codec.schema["fields"]) if f is not None]}
    rows = make_trade_rows([trade_row(sequence=3, platform_sequence=9)])
    row = rows.to_pylist()[0]
    decoded = codec.decode(_written(changed, 4, [row]), lookup({4: changed}))
    assert decoded.errors == []
    assert decoded.rows.to_pylist() == [row | {"platform_sequence": None}]


def _retyped(schema: dict[str, Any], name: str, avro_type: Any) -> dict[str, Any]:
    fields = [{**f, "type": avro_type} if f["name"] == name else f for f in schema["fields"]]
    return {**schema, "fields": fields}


def test_writer_with_another_logical_type_fails_only_its_messages() -> None:
    """Millisecond timestamps read as microseconds would be silently wrong: they are refused."""
    codec = RecordCodec(TRADE)
    millis = _retyped(codec.schema, "timestamp", {"type": "long", "logicalType": "timestamp-millis"})
    good = codec.encode(make_trade_rows([trade_row()]), SCHEMA_ID)[0]
    decoded = codec.decode([HEADER.pack(0, 8) + good[5:], good], lookup({SCHEMA_ID: codec.schema, 8: millis}))
    assert len(decoded.rows) == 1
    assert [index for index, _ in decoded.errors] == [0]
    assert "timestamp-millis" in decoded.errors[0][1]


def test_decimal_beyond_the_record_precision_is_an_error() -> None:
    codec = RecordCodec(TRADE)
    wide = _retyped(
        codec.schema, "price", {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 8}
    )
    parsed = fastavro.parse_schema(wide)
    rows = make_trade_rows([trade_row(price=p) for p in ("1", "1")]).to_pylist()
    values = []
    for row, price in zip(rows, (Decimal("12345678901"), Decimal(-1)), strict=True):
        buffer = io.BytesIO()
        buffer.write(HEADER.pack(0, 9))
        fastavro.schemaless_writer(buffer, parsed, row | {"price": price})
        values.append(buffer.getvalue())
    decoded = codec.decode(values, lookup({9: wide}))
    assert decoded.errors == [(0, "price does not fit decimal128(18, 8)")]
    assert decoded.rows.column("price").to_pylist() == [Decimal("-1.00000000")]


def test_registry_failure_fails_the_call_not_the_messages() -> None:
    """Only an unknown id is a message's fault; an unreachable registry is raised to the caller."""
    codec = RecordCodec(TRADE)
    values = codec.encode(make_trade_rows([trade_row()]), SCHEMA_ID)

    def unreachable(_: int) -> dict[str, Any]:
        raise RetryableError("registry down")

    with pytest.raises(RetryableError):
        codec.decode(values, unreachable)


def test_writer_schemas_are_looked_up_once_per_id() -> None:
    codec = RecordCodec(TRADE)
    values = codec.encode(make_trade_rows([trade_row(sequence=i) for i in range(1, 6)]), SCHEMA_ID)
    calls: list[int] = []

    def schema_for(schema_id: int) -> dict[str, Any]:
        calls.append(schema_id)
        return codec.schema

    codec.decode(values, schema_for)
    codec.decode(values, schema_for)
    assert calls == [SCHEMA_ID]


@pytest.mark.parametrize(
    "rows",
    [
        make_trade_rows([trade_row(side="SIDEWAYS")]),
        make_trade_rows([trade_row()]).drop_columns(["price"]),
    ],
    ids=["unknown-enum-symbol", "missing-column"],
)
def test_rows_that_do_not_fit_the_record_are_refused(rows: pa.Table) -> None:
    with pytest.raises(InvalidInputError):
        RecordCodec(TRADE).encode(rows, SCHEMA_ID)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"side": "SIDEWAYS"}, "row 150: side='SIDEWAYS' is not one of"),
        ({"price": None}, "row 150: price is required"),
    ],
    ids=["unknown-enum-symbol", "null-in-required"],
)
def test_a_large_batch_names_the_row_that_does_not_fit(bad: dict[str, Any], message: str) -> None:
    """Encoded a column at a time, a batch with one bad row is refused, naming that row (the codec
    refuses a null in a required field before, when casting to the record's schema)."""
    rows = [trade_row(sequence=i) for i in range(200)]
    rows[150] = rows[150] | bad
    nullable = pa.schema([field.with_nullable(True) for field in TRADE.arrow_schema()])
    with pytest.raises(InvalidInputError, match=message):
        encode_table(TRADE.columns, pa.Table.from_pylist(rows, schema=nullable), HEADER.pack(0, SCHEMA_ID))


def test_nothing_in_nothing_out() -> None:
    codec = RecordCodec(QUOTE)
    assert codec.encode(pa.Table.from_pylist([], schema=QUOTE.arrow_schema()), SCHEMA_ID) == []
    decoded = codec.decode([], lookup({}))
    assert decoded.errors == []
    assert decoded.rows.num_rows == 0
    assert decoded.rows.schema == QUOTE.arrow_schema()


def test_another_record_is_refused_by_name() -> None:
    """A quote on a trades topic is valid Avro of another record: refused as such, not misread."""
    quote = RecordCodec(QUOTE)
    values = quote.encode(pa.Table.from_pylist([QUOTE_ROW], schema=QUOTE.arrow_schema()), 3)
    decoded = RecordCodec(TRADE).decode(values, lookup({3: quote.schema}))
    assert decoded.errors == [(0, "schema 3 writes Quote records, not Trade")]
