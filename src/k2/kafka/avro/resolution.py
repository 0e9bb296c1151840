"""How a writer schema other than a record's own is read: which fields it adds, and whether the
record's fields can be read from what it writes (Avro's resolution rules, with the promotions the
specification allows).
"""

from __future__ import annotations

from typing import Any

import orjson

from k2.domain.events import PRICE_PRECISION, PRICE_SCALE
from k2.schemas.record import Column, Kind

#: Writer types Avro resolution reads as another type (Avro 1.11 specification, "Schema Resolution").
_PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}
#: Avro types of fields a writer may add, by (type, logical type), and the column kind holding them.
_ADDED_KINDS = {
    ("string", None): Kind.STRING,
    ("long", None): Kind.LONG,
    ("int", None): Kind.LONG,
    ("boolean", None): Kind.BOOLEAN,
    ("long", "timestamp-micros"): Kind.TIMESTAMP,
    ("int", "date"): Kind.DATE,
    ("bytes", "decimal"): Kind.DECIMAL,
    ("array", None): Kind.STRING_LIST,
    ("map", None): Kind.STRING_MAP,
    ("enum", None): Kind.ENUM,
}


def added_column(field: dict[str, Any]) -> Column | str:
    """The optional column holding a field a writer adds to the record (its type expanded), or
    why no K2 column can hold it.
    """
    branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
    types = [branch for branch in branches if branch != "null"]
    if len(types) == 1:
        avro = types[0] if isinstance(types[0], dict) else {"type": types[0]}
        kind = _added_kind(avro)
        if kind is not None:
            enum = kind is Kind.ENUM
            return Column(
                field["name"],
                kind,
                str(field.get("doc", "")),
                required=False,
                symbols=tuple(avro["symbols"]) if enum else (),
                enum_name=str(avro["name"]) if enum else "",
            )
    return f"adds field {field['name']} of type {_describe_type(field['type'])}, which no K2 column holds"


def _added_kind(avro: dict[str, Any]) -> Kind | None:
    """The column kind holding values of an Avro type, if there is one."""
    base, logical = avro.get("type"), avro.get("logicalType")
    if not isinstance(base, str) or not isinstance(logical, str | None):
        return None
    kind = _ADDED_KINDS.get((base, logical))
    match kind:
        case Kind.DECIMAL:
            fits = avro.get("scale") == PRICE_SCALE and 0 < avro.get("precision", 0) <= PRICE_PRECISION
        case Kind.STRING_LIST:
            fits = avro.get("items") == "string"
        case Kind.STRING_MAP:
            fits = avro.get("values") == "string"
        case _:
            fits = True
    return kind if fits else None


def unreadable(field: dict[str, Any], written: dict[str, Any] | None) -> str | None:
    """Why a record ``field`` cannot be read from a writer's field of the same name (None: it has
    none), or None when it can: a required field must be written, and every type the writer may
    write it as must be one the field takes, or promote to one (as Avro resolution does).
    """
    if written is None:
        return None if "default" in field else f"drops required field {field['name']}"
    reads = _branches(field["type"])
    for branch in _branches(written["type"]):
        if branch not in reads and not any((branch, r) in _PROMOTIONS for r in reads):
            return f"writes {field['name']} as {_describe_type(written['type'])}"
    return None


def _branches(avro: Any) -> frozenset[object]:
    """The shapes of the types a field may hold: one, or each branch of a union."""
    return frozenset(_shape(branch) for branch in (avro if isinstance(avro, list) else [avro]))


def _shape(avro: Any) -> object:
    """An expanded Avro type as a comparable value: names, docs, logical types and enum symbols
    left out (logical types are compared apart; a new enum symbol fails only its own messages).
    """
    if isinstance(avro, str):
        return avro
    if isinstance(avro, list):
        return _branches(avro)
    match avro["type"]:
        case "array":
            return ("array", _shape(avro["items"]))
        case "map":
            return ("map", _shape(avro["values"]))
        case "enum":
            return "enum"
        case "fixed":
            return ("fixed", avro["size"])
        case "record":
            return ("record", tuple((f["name"], _shape(f["type"])) for f in avro["fields"]))
        case other:
            return _shape(other)


def _describe_type(avro: Any) -> str:
    """An Avro type as compact JSON, without fastavro's bookkeeping keys."""
    if isinstance(avro, dict):
        avro = {k: v for k, v in avro.items() if not k.startswith("__")}
    return orjson.dumps(avro).decode()
